"""The plugin object QGIS creates: registers the Processing provider and a menu entry."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsSettings

from . import dependencies


class LSTFusionPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        dependencies.add_paths(QgsSettings().value(dependencies.SETTINGS_KEY, "", type=str) or None)

    def initProcessing(self):  # noqa: N802
        from .provider import LSTFusionProvider

        self.provider = LSTFusionProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)
        problem = dependencies.backend_problem()
        if problem:
            QgsMessageLog.logMessage(problem, "LST Fusion", Qgis.Warning)
            if self.iface is not None and self.iface.messageBar() is not None:
                self.iface.messageBar().pushMessage(
                    "LST Fusion", problem.splitlines()[0] + " See the log for how to install them.",
                    level=Qgis.Warning, duration=15,
                )
        elif self.iface is not None and self.iface.messageBar() is not None:
            self._offer_install()

    def _offer_install(self):
        """A message bar with an Install button when packages the installer can add are missing."""
        from .installer import GROUPS, missing

        gone = missing(list(GROUPS))
        if not gone:
            return
        from qgis.PyQt.QtWidgets import QPushButton

        bar = self.iface.messageBar()
        item = bar.createMessage("LST Fusion", f"Some stages need Python packages that are not installed "
                                 f"({', '.join(r.split('=')[0] for r in gone)}).")
        button = QPushButton("Install…")
        button.clicked.connect(self._install_packages)
        item.layout().addWidget(button)
        bar.pushWidget(item, Qgis.Info, 0)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtWidgets import QAction

        for text, slot in (("LST Fusion algorithms…", self._show_toolbox),
                           ("Install Python packages…", self._install_packages),
                           ("Python environment…", self._choose_venv)):
            action = QAction(self.provider.icon(), text, self.iface.mainWindow())
            action.triggered.connect(slot)
            self.iface.addPluginToRasterMenu("LST Fusion", action)
            self.actions.append(action)

    def _show_toolbox(self):
        from qgis.PyQt.QtWidgets import QDockWidget

        dock = self.iface.mainWindow().findChild(QDockWidget, "ProcessingToolbox")
        if dock is not None:
            dock.setVisible(True)
            dock.raise_()

    def _install_packages(self):
        from .installer_dialog import InstallerDialog

        InstallerDialog(self.iface.mainWindow()).exec()

    def _choose_venv(self):
        """Let the user name the virtual environment holding torch/onnxruntime (kept in QGIS settings)."""
        from qgis.PyQt.QtWidgets import QFileDialog, QMessageBox

        settings = QgsSettings()
        folder = QFileDialog.getExistingDirectory(
            self.iface.mainWindow(), "Virtual environment for LST Fusion (the folder holding lib/python3.X)",
            settings.value(dependencies.SETTINGS_KEY, "", type=str))
        if not folder:
            return
        settings.setValue(dependencies.SETTINGS_KEY, folder)
        added = dependencies.add_paths(folder)
        gone = dependencies.missing(dependencies.REQUIRED) + dependencies.missing(dependencies.OPTIONAL)
        text = f"Using {folder}" + (f" ({len(added)} path(s) added)." if added else ".")
        if gone:
            table = {**dependencies.REQUIRED, **dependencies.OPTIONAL}
            text += "\n\nStill missing:\n" + dependencies.install_hint(gone, table)
        QMessageBox.information(self.iface.mainWindow(), "LST Fusion", text)

    def unload(self):
        for action in self.actions:
            self.iface.removePluginRasterMenu("LST Fusion", action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
