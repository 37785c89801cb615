from idsbench.evaluation.metrics import check_probabilities, classification_metrics

__all__ = ["check_probabilities", "classification_metrics"]
