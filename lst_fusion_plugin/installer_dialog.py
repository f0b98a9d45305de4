"""The dialog that offers to install missing Python packages: what is missing, progress and pip's log."""

from __future__ import annotations

from qgis.PyQt.QtCore import QThread, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QVBoxLayout,
)

from . import dependencies, installer


class _Worker(QThread):
    line = pyqtSignal(str)
    done = pyqtSignal(str)  # "" on success, else the error message

    def __init__(self, groups: list[str], target):
        super().__init__()
        self.groups, self.target, self.cancelled = groups, target, False

    def run(self):
        try:
            installer.install(self.groups, self.target, on_line=self.line.emit, is_cancelled=lambda: self.cancelled)
        except installer.InstallError as exc:
            self.done.emit(str(exc))
            return
        self.done.emit("")


class InstallerDialog(QDialog):
    """Lists the missing packages by group; Install runs pip into the profile's packages folder."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("LST Fusion — Python packages")
        self.target = dependencies.packages_folder()
        layout = QVBoxLayout(self)
        self.boxes = {}
        gone = installer.missing(list(installer.GROUPS))
        intro = ("Some stages need Python packages QGIS does not ship. They are installed with QGIS's own "
                 f"Python (pip) into\n{self.target}\n— nothing is installed into QGIS itself; the folder is "
                 "used on every start, after a virtual environment set for the plugin.")
        layout.addWidget(QLabel(intro))
        for group, what in installer.GROUPS.items():
            needed = [r for r in gone if r in installer.requirements(group)]
            box = QCheckBox(f"{what}: " + (", ".join(needed) if needed else "all installed"))
            box.setChecked(bool(needed))
            box.setEnabled(bool(needed))
            layout.addWidget(box)
            self.boxes[group] = box
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMinimumSize(640, 220)
        layout.addWidget(self.log)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Install")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(gone))
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.close_or_cancel)
        layout.addWidget(self.buttons)
        self.worker = None

    def start(self):
        groups = [g for g, box in self.boxes.items() if box.isChecked()]
        if not groups:
            return
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
        self.progress.setRange(0, 0)  # pip does not say how far it is: busy until it ends
        self.worker = _Worker(groups, self.target)
        self.worker.line.connect(self.log.appendPlainText)
        self.worker.done.connect(self.finished_install)
        self.worker.start()

    def finished_install(self, error: str):
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if error else 1)
        self.log.appendPlainText(error or "Done. Restart QGIS to use the new packages.")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(error))
        self.worker = None

    def close_or_cancel(self):
        if self.worker is not None:
            self.worker.cancelled = True
            self.log.appendPlainText("Cancelling…")
            return
        self.reject()
