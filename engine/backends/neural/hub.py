"""Finding model folders: a path, a Hugging Face cache folder, or a repo id in the local cache.

    folder = locate(spec, repo_id="stabilityai/stable-audio-open-small",
                    need=["model_config.json"], pull="segue models pull sao-small")

Lookups go through huggingface_hub's own cache functions
(`snapshot_download(local_files_only=True)`, `scan_cache_dir`), so HF_HOME,
HF_HUB_CACHE and the rest of its settings apply exactly as they do for every
other tool; nothing is ever downloaded at run time. Only `pull` (for
`segue models pull`) talks to the network, and it explains gated repositories
(licence and token) and offline machines in its error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ...errors import SegueError

REPO_FOLDER_PREFIX = "models--"


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache as huggingface_hub resolves it ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/...)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def looks_like_repo_id(spec: str) -> bool:
    """"org/name" (one slash, no path-like start) -> True."""
    return spec.count("/") == 1 and not spec.startswith(("/", ".", "~")) and all(spec.split("/"))


def repo_id_of_cache_folder(folder: Path) -> str | None:
    """models--org--name -> "org/name" (None for other folders)."""
    name = folder.name
    if not name.startswith(REPO_FOLDER_PREFIX) or "--" not in name[len(REPO_FOLDER_PREFIX):]:
        return None
    return name[len(REPO_FOLDER_PREFIX):].replace("--", "/", 1)


def cached_snapshot(repo_id: str, cache_dir: Path | str | None = None) -> Path | None:
    """The snapshot folder of `repo_id` in the cache (refs/main, else the newest revision), or None."""
    from huggingface_hub import scan_cache_dir, snapshot_download
    from huggingface_hub.errors import CacheNotFound, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        pass
    try:   # no refs/main (copied by hand): the most recently modified revision
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, OSError, ValueError):
        return None
    for repo in info.repos:
        if repo.repo_id == repo_id and repo.repo_type == "model" and repo.revisions:
            return Path(max(repo.revisions, key=lambda r: r.last_modified).snapshot_path)
    return None


def missing_files(folder: Path, need: Iterable[str | tuple[str, ...]]) -> list[str]:
    """Entries of `need` absent from folder; a tuple entry means "any one of these"."""
    out = []
    for n in need:
        alts = (n,) if isinstance(n, str) else tuple(n)
        if not any((folder / a).exists() for a in alts):
            out.append(" or ".join(alts))
    return out


def locate(spec: str | None, repo_id: str, need: Iterable[str | tuple[str, ...]] = (),
           pull: str | None = None, what: str = "model", code: str = "model_not_found",
           cache_dir: Path | str | None = None) -> Path:
    """The folder holding a model: `spec` is a folder, a cache folder (models--org--name), a repo id,
    or None for `repo_id`; looked up in the local cache only. Every name in `need` must be there.

    Raises SegueError(code) naming the folder, what is missing and how to get it (`pull`).
    """
    spec = spec or repo_id
    how = f"run `{pull}`" if pull else f"download {repo_id}"
    p = Path(spec).expanduser()
    if p.is_dir():
        rid = repo_id_of_cache_folder(p) if (p / "snapshots").is_dir() else None
        if rid is not None:
            folder = cached_snapshot(rid, p.parent)
            if folder is None:
                raise SegueError(code, f"{p} is a Hugging Face cache folder with no snapshot; {how}")
        else:
            folder = p
    elif looks_like_repo_id(spec) and not p.exists():
        folder = cached_snapshot(spec, cache_dir)
        if folder is None:
            raise SegueError(code, f"{what} {spec} is not in the Hugging Face cache "
                             f"({cache_dir or hub_cache_dir()}); {how} or pass a folder")
    else:
        state = "is a file, not a folder" if p.exists() else "does not exist"   # a file named by mistake
        raise SegueError(code, f"{what} folder {spec} {state}; {how} or pass a folder"
                         + (f" holding {', '.join(str(n) for n in need)}" if need else ""))
    gone = missing_files(folder, need)
    if gone:
        raise SegueError(code, f"{folder} is not a complete {what} folder: missing {', '.join(gone)}")
    return folder


def gated_help(repo_id: str, licence: str) -> str:
    """What to do for a gated repository: accept the licence, make a token, log in."""
    return (f"{repo_id} is gated: sign in at https://huggingface.co/{repo_id}, accept the {licence} there, "
            "create a read token at https://huggingface.co/settings/tokens, then run `hf auth login` "
            "(or set HF_TOKEN) and pull again")


def pull(repo_id: str, files: list[str] | None, cache_dir: Path | str | None = None, token: str | None = None,
         licence: str = "licence", what: str | None = None) -> Path:
    """Download `files` (glob patterns; None = all) of repo_id into the cache (segue models pull only).

    Raises SegueError: "gated" (licence + token explained), "offline" (what to copy, and where),
    "not_found", "pull_failed".
    """
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub import errors as hfe
    except ImportError as e:
        raise SegueError("unavailable", "huggingface_hub is not installed: from the repository root run "
                                        ".venv/bin/pip install -e '.[neural]'") from e
    try:
        return Path(snapshot_download(repo_id, allow_patterns=files, cache_dir=cache_dir, token=token))
    except hfe.GatedRepoError as e:
        raise SegueError("gated", gated_help(repo_id, licence)) from e
    except hfe.RepositoryNotFoundError as e:
        if token is None:
            raise SegueError("gated", f"{repo_id} was not found or needs a token; " + gated_help(repo_id, licence)) from e
        raise SegueError("not_found", f"{repo_id} does not exist on huggingface.co (or your token cannot see it)") from e
    except Exception as e:
        name, text = type(e).__name__, str(e)
        if "401" in text or "403" in text:
            raise SegueError("gated", gated_help(repo_id, licence)) from e
        if isinstance(e, (hfe.LocalEntryNotFoundError, OSError)) or any(
                s in name for s in ("Connection", "Offline", "Timeout")):
            where = cache_dir or hub_cache_dir()
            raise SegueError("offline", f"cannot reach huggingface.co ({name}). Fetch {what or repo_id} on a "
                             f"machine with network and copy it into {where} (or any folder, then pass it "
                             "with --model)") from e
        raise SegueError("pull_failed", f"{repo_id}: {name}: {text}") from e


def read_model_config(path: str | Path) -> dict:
    """The JSON object in a model folder's `model_config.json` (or any config file at `path`).

    Raises SegueError: model_not_found (no such file), model_invalid (unreadable or not JSON).
    """
    import json

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SegueError("model_not_found", f"{path} is missing") from e
    except (OSError, ValueError) as e:
        raise SegueError("model_invalid", f"cannot read {path}: {e}") from e
