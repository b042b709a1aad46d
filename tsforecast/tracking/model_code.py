"""Entry point of logged forecaster models (MLflow "models from code").

MLflow copies this file into each logged model and runs it when the model loads, so no Python
object of ours is pickled into the model; the estimator itself is an artifact (see
:mod:`tsforecast.tracking.pyfunc`).
"""

from mlflow.models import set_model

from tsforecast.tracking.pyfunc import ForecasterModel

set_model(ForecasterModel())
