META = {
    "env_id": "env_fs",
    "env_class_name": "FileSystem",
    "environment_summary": "A workspace file system with parent pointers",
    "environment_introduction": (
        "This environment is a small Unix-like file system. Directories hold files and other directories, "
        "and every entry knows its parent. Agents move around with cd, read and write files, and reorganise "
        "the tree with mkdir, mv and rm."
    ),
    "constraints_rules": [
        "Names are unique within a directory.",
        "mv moves an entry of the current directory into a directory, or renames it.",
    ],
}

BASE = {
    "root_name": "workspace",
    "tree": {
        "docs": {"report.txt": "Q1 revenue up\nQ2 flat\n", "notes.md": "call Ana\n"},
        "src": {"main.py": "print('hi')\n", "util": {"strings.py": "def up(s): return s.upper()\n"}},
        "todo.txt": "ship it\n",
        ".env": "SECRET=1\n",
    },
}

SCENARIOS = [
    {
        "task_id": "0901-100000",
        "task": (
            "In my workspace, make an archive folder inside docs, move the quarterly report into it and add a "
            "summary.txt next to it that says 'Q1 up, Q2 flat'. Then tell me how many lines the report has and "
            "remove the stray todo.txt from the top level once the work is filed."
        ),
        "checks": [
            ("Is report.txt in docs/archive, with its parent pointing at archive?", '''
def check_func(final_state):
    archive = final_state["root"].contents["docs"].contents["archive"]
    report = archive.contents["report.txt"]
    return report.parent is archive and archive.parent is final_state["root"].contents["docs"]
'''),
            ("Does docs/archive/summary.txt say 'Q1 up, Q2 flat'?", '''
def check_func(final_state):
    archive = final_state["root"].contents["docs"].contents["archive"]
    return archive.contents["summary.txt"].content == "Q1 up, Q2 flat"
'''),
            ("Is todo.txt gone from the top level, which had it at the start?", '''
def check_func(final_state):
    return "todo.txt" in initial_state["root"].contents and "todo.txt" not in final_state["root"].contents
'''),
        ],
        "solution": [
            ("cd", {"folder": "docs"}),
            ("mkdir", {"dir_name": "archive"}),
            ("mv", {"source": "report.txt", "destination": "archive"}),
            ("cd", {"folder": "archive"}),
            ("echo", {"content": "Q1 up, Q2 flat", "file_name": "summary.txt"}),
            ("wc", {"file_name": "report.txt", "mode": "l"}),
            ("pwd", {}),
            ("cd", {"folder": "/"}),
            ("ls", {"a": True}),
            ("rm", {"file_name": "todo.txt"}),
            ("find", {"path": "/", "name": ".txt"}),
        ],
    },
    {
        "task_id": "0901-113000",
        "task": (
            "Rename src/util to src/helpers, create a tests directory under src with an empty test_strings.py, "
            "read me main.py, and leave me in the tests directory when you are done so I can start writing "
            "tests there right away without having to navigate anywhere myself."
        ),
        "checks": [
            ("Is src/util renamed to helpers, with strings.py still inside?", '''
def check_func(final_state):
    src = final_state["root"].contents["src"]
    helpers = src.contents.get("helpers")
    return "util" not in src.contents and helpers is not None and helpers.name == "helpers" \\
        and helpers.contents["strings.py"].parent is helpers
'''),
            ("Does src/tests hold an empty test_strings.py?", '''
def check_func(final_state):
    tests = final_state["root"].contents["src"].contents["tests"]
    return tests.contents["test_strings.py"].content == ""
'''),
            ("Is the current directory src/tests?", '''
def check_func(final_state):
    cwd = final_state["cwd"]
    return cwd.name == "tests" and cwd.parent.name == "src" and cwd.parent.parent is final_state["root"]
'''),
        ],
        "solution": [
            ("cd", {"folder": "src"}),
            ("mv", {"source": "util", "destination": "helpers"}),
            ("cat", {"file_name": "main.py"}),
            ("mkdir", {"dir_name": "tests"}),
            ("cd", {"folder": "tests"}),
            ("touch", {"file_name": "test_strings.py"}),
            ("cat", {"file_name": "../helpers/strings.py"}),
            ("cd", {"folder": "nowhere"}),
            ("find", {}),
        ],
    },
]
