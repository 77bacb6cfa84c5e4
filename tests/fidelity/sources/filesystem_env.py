"""A file system as a tree of objects: every directory and file points back at its parent."""

from typing import Dict, List, Optional, Union


class File:
    """A file: a name, text content, and the directory holding it."""

    def __init__(self, name: str, content: str = "", parent: Optional["Directory"] = None) -> None:
        self.name = name
        self.content = content
        self.parent = parent


class Directory:
    """A directory: a name, its entries by name, and the directory holding it (None at the root)."""

    def __init__(self, name: str, parent: Optional["Directory"] = None) -> None:
        self.name = name
        self.parent = parent
        self.contents: Dict[str, Union["Directory", File]] = {}


def _build(tree: dict, name: str, parent: Optional[Directory]) -> Directory:
    directory = Directory(name, parent)
    for key, value in tree.items():
        directory.contents[key] = _build(value, key, directory) if isinstance(value, dict) else File(key, value,
                                                                                                      directory)
    return directory


class FileSystem:
    def __init__(self, config: Optional[dict] = None) -> None:
        config = config or {}
        self.root = _build(config.get("tree", {}), config.get("root_name", "workspace"), None)
        self.cwd = self.root

    def _path(self, node: Union[Directory, File]) -> str:
        parts = []
        while node is not None and node.parent is not None:
            parts.append(node.name)
            node = node.parent
        return "/" + "/".join(reversed(parts))

    def _resolve(self, path: str) -> Optional[Union[Directory, File]]:
        node: Union[Directory, File, None] = self.root if path.startswith("/") else self.cwd
        for part in [p for p in path.split("/") if p and p != "."]:
            if not isinstance(node, Directory):
                return None
            node = node.parent if part == ".." else node.contents.get(part)
            if node is None:
                return None
        return node

    def pwd(self) -> dict:
        """Return the current working directory's path."""
        return {"current_working_directory": self._path(self.cwd)}

    def ls(self, a: bool = False) -> dict:
        """List the current directory's entries, sorted; hidden ones (starting with '.') only when a is True."""
        names = sorted(n for n in self.cwd.contents if a or not n.startswith("."))
        return {"current_directory_content": names}

    def cd(self, folder: str) -> dict:
        """Change the current directory to folder (a name, '..', or a path)."""
        node = self._resolve(folder)
        if not isinstance(node, Directory):
            return {"error": f"cd: {folder}: No such directory"}
        self.cwd = node
        return {"current_working_directory": self._path(node)}

    def mkdir(self, dir_name: str) -> dict:
        """Make a directory named dir_name in the current directory."""
        if "/" in dir_name or dir_name in self.cwd.contents:
            return {"error": f"mkdir: cannot create directory '{dir_name}'"}
        self.cwd.contents[dir_name] = Directory(dir_name, self.cwd)
        return {}

    def touch(self, file_name: str) -> dict:
        """Create an empty file named file_name in the current directory."""
        if file_name in self.cwd.contents:
            return {"error": f"touch: '{file_name}': File exists"}
        self.cwd.contents[file_name] = File(file_name, "", self.cwd)
        return {}

    def echo(self, content: str, file_name: Optional[str] = None) -> dict:
        """Write content to file_name in the current directory (created if missing), or just return it."""
        if file_name is None:
            return {"terminal_output": content}
        entry = self.cwd.contents.get(file_name)
        if isinstance(entry, Directory):
            return {"error": f"echo: {file_name}: Is a directory"}
        if entry is None:
            entry = self.cwd.contents[file_name] = File(file_name, "", self.cwd)
        entry.content = content
        return {"terminal_output": None}

    def cat(self, file_name: str) -> dict:
        """Return a file's content (a name or a path)."""
        node = self._resolve(file_name)
        if not isinstance(node, File):
            return {"error": f"cat: {file_name}: No such file"}
        return {"file_content": node.content}

    def mv(self, source: str, destination: str) -> dict:
        """Move source (in the current directory) into the directory destination, or rename it to destination."""
        entry = self.cwd.contents.get(source)
        if entry is None:
            return {"error": f"mv: cannot stat '{source}': No such file or directory"}
        target = self._resolve(destination)
        if isinstance(target, Directory):
            if entry.name in target.contents:
                return {"error": f"mv: '{destination}/{entry.name}' already exists"}
            del self.cwd.contents[source]
            target.contents[entry.name] = entry
            entry.parent = target
            return {"result": f"moved '{source}' to '{self._path(target)}'"}
        if target is not None or "/" in destination:
            return {"error": f"mv: cannot move '{source}' to '{destination}'"}
        del self.cwd.contents[source]
        entry.name = destination
        self.cwd.contents[destination] = entry
        return {"result": f"renamed '{source}' to '{destination}'"}

    def rm(self, file_name: str) -> dict:
        """Remove a file or directory from the current directory."""
        entry = self.cwd.contents.pop(file_name, None)
        if entry is None:
            return {"error": f"rm: cannot remove '{file_name}': No such file or directory"}
        entry.parent = None
        return {"result": f"'{file_name}' removed"}

    def find(self, path: str = ".", name: Optional[str] = None) -> dict:
        """Paths under path (depth first, sorted) whose last part contains name (all when name is None)."""
        start = self._resolve(path)
        if not isinstance(start, Directory):
            return {"error": f"find: '{path}': No such directory"}
        matches: List[str] = []
        stack = [start]
        while stack:
            node = stack.pop()
            for key in sorted(node.contents, reverse=True):
                child = node.contents[key]
                if isinstance(child, Directory):
                    stack.append(child)
            for key in sorted(node.contents):
                if name is None or name in key:
                    matches.append(self._path(node.contents[key]))
        return {"matches": matches}

    def wc(self, file_name: str, mode: str = "l") -> dict:
        """Count lines (l), words (w) or characters (c) of a file in the current directory."""
        entry = self.cwd.contents.get(file_name)
        if not isinstance(entry, File):
            return {"error": f"wc: {file_name}: No such file"}
        counts = {"l": len(entry.content.splitlines()), "w": len(entry.content.split()), "c": len(entry.content)}
        if mode not in counts:
            return {"error": f"wc: invalid mode '{mode}'"}
        return {"count": counts[mode], "type": {"l": "lines", "w": "words", "c": "characters"}[mode]}
