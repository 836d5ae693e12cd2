"""The trace-inspection terminal UI (Textual).

from mascope.tui import TraceApp, open_for_viewing

TraceApp(open_for_viewing("mascope.db")).run()
"""

from ._app import TraceApp
from ._open import browse
from ._source import open_for_viewing

__all__ = ["TraceApp", "browse", "open_for_viewing"]
