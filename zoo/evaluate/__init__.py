"""Evaluation: the evaluator, the context handed to metrics, the face classifier and the report."""
