"""One model load at a time in a process. transformers builds a model's layers on the meta device through
process-wide patches, so two models loading at once in two threads (the app's background warm-up of the answer
model and a question loading the embedder) corrupt each other ("Cannot copy out of meta tensor"). Every load of a
model holds `LOADING`."""

from __future__ import annotations

import threading

LOADING = threading.RLock()
