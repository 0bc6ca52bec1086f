"""The project store: one SQLite file per project, and the only code that writes SQL.

```python
from annotune.core.store import Project
project = Project.open(path)
```
"""

from annotune.core.store.project import Project
from annotune.core.store.records import Example, ImportSummary, StoredAnnotation
from annotune.core.store.runs import RunEpoch, RunRow, StoredPrediction

__all__ = ["Example", "ImportSummary", "Project", "RunEpoch", "RunRow", "StoredAnnotation",
           "StoredPrediction"]
