"""The capstone pipeline as a REST service: :mod:`.app` (FastAPI application), :mod:`.process`
(start a real server on a loopback port and wait for it), :mod:`.cli` (``labkit serve``)."""
