"""A speech-conditioned diffusion generator (issue 22); its components are registered here."""
