"""The lambdascope web dashboard (Dash pages app)."""
