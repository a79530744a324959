"""`make report`: charts, theory beside measurement, and conclusions, from run records alone."""
