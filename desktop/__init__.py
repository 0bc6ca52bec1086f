"""The desktop app (PySide6): the only part of annotune that imports Qt.

Start it with ``annotune-desktop [PROJECT]`` or ``annotune gui PROJECT``
(``annotune.desktop.app:main``). Modules, one job each:

- launcher, app, crash: start-up (without Qt installed: the extra to install), log file
  (``<data dir>/logs/desktop.log``), uncaught-error dialog; icons/: the app's icon
- system_libraries: the X11 libraries Qt's xcb plugin needs, checked before Qt starts
- training_env: the Python with torch that trains and exports ("Enable training")
- self_test: ``--self-test`` walks through the real window and reports each step
- main_window, start_screen, recent: menus, tabs, new/open/recent projects
- hookspecs, plugins, editors/: the ``register_editors`` hook and the editors per
  annotation kind ("label", "spans", "answers")
- labeling: the queue of examples around an editor; every decision saved at once
- browser, summaries: the lazily paged example table with filters and search
- import_dialog: preview, column mapping and problems before an import writes anything
- train_panel, job_events, chart, base_models: the training job as Qt signals, live curves
- runs_view, metrics_tables, export_dialog, tryit: runs, bundles, predictions
- style, shortcuts: the look (palettes that follow the system's dark mode, spacing, label
  and state colours, the icon) and the Help ▸ Keyboard shortcuts sheet
- worker: blocking core calls off the GUI thread; testing: helpers for tests and scripts
- screenshots: regenerates docs/screenshots/
"""
