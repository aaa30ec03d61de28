"""The same server on a Ray Serve cluster: an ingress deployment that runs the FastAPI app
unchanged, and a model deployment that batches windows from every session of the cluster.

Only this package imports ``ray`` (an optional extra: ``pip install wirescribe[cluster]``), and
only in the modules that need it: :mod:`~wirescribe.cluster.plan` and
:mod:`~wirescribe.cluster.remote` are plain Python. ``uvicorn server:app`` never gets here.

* :mod:`~wirescribe.cluster.plan` — the numbers of a deployment (replicas, batch size, limits,
  graceful timeouts), derived from :class:`~wirescribe.settings.Settings` in one place.
* :mod:`~wirescribe.cluster.remote` — a transcriber that looks like the local one to the app and
  sends each window to the model deployment's handle.
* :mod:`~wirescribe.cluster.model` — the model deployment (``@serve.batch``).
* :mod:`~wirescribe.cluster.ingress` — the ingress deployment and its drain on replica stop.
* :mod:`~wirescribe.cluster.serve` — the entry point: the two Serve applications, deploy, delete.
* :mod:`~wirescribe.cluster.local` — ``make cluster``: two Ray nodes on this machine.
"""
