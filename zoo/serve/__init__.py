"""The demo page behind ``python main.py serve``: speak or drop a clip, see the face.

``faces`` turns uploads into faces with ``zoo.generate``'s Drawer (models loaded once per
checkpoint and reused), ``app`` is the Starlette application (routes, limits, JSON errors), and
``static/`` holds the page, its script and its style, all served by the app itself.
"""
