"""The artifact store: model version folders and data asset files under ``FMHUB_HOME/artifacts``.

Files are written to a temporary sibling first and renamed into place, so a failure never leaves a
half-written version behind.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


class ArtifactStore:
    """Paths and atomic placement of artifacts.

    Args:
        root: The store's root folder, e.g. ``~/.fmhub/artifacts``.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_dir(self, name: str, version: int) -> Path:
        """Folder of a workspace model version: ``models/<name>/<version>``."""
        return self.root / "models" / name / str(version)

    def data_dir(self, name: str, version: int) -> Path:
        """Folder of a data asset version: ``data/<name>/<version>``."""
        return self.root / "data" / name / str(version)

    def cache_dir(self, *parts: str) -> Path:
        """A cache folder (derived models, dequantised weights): ``cache/<parts...>``."""
        return self.root.joinpath("cache", *parts)

    def place_dir(self, src: Path, dest: Path, move: bool = False) -> Path:
        """Copy (or move) folder ``src`` to ``dest`` atomically; ``dest`` must not exist.

        Raises:
            FileExistsError: when ``dest`` exists.
        """
        if dest.exists():
            raise FileExistsError(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            if move:
                shutil.move(str(src), str(tmp))
            else:
                shutil.copytree(src, tmp)
            tmp.rename(dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return dest

    def place_file(self, src: Path, dest: Path) -> Path:
        """Copy file ``src`` to ``dest`` atomically (temporary file, then rename)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copyfile(src, tmp)
            tmp.rename(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dest
