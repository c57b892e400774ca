"""One router per resource: predictions, the model, health, admin, metrics, docs."""
