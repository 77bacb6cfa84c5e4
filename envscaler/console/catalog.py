"""The environments as the console lists them: read from the corpus files, never executed.

Tools come from the same static reading the images use (envscaler/spec/toolschema.py parses the class, it does not
import it); image tags and whether they are built come from the engine, looked up once in the background.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from envscaler.spec import Corpus, EnvSpec
from envscaler.spec.toolschema import SchemaError, served_tools


@dataclass(frozen=True)
class EnvRow:
    env_id: str
    class_name: str
    summary: str
    tools: int
    scenarios: int
    tools_error: str = ""


@dataclass
class ImageState:
    tag: str = ""
    state: str = "unknown"  # built, not built, invalid, no runtime image, no engine, unknown (still looking)
    detail: str = ""


@dataclass
class Catalog:
    corpus: Corpus
    tool_schemas: str = "derived"
    images: dict[str, ImageState] = field(default_factory=dict)

    _tools: dict[str, tuple[list[dict], str]] = field(default_factory=dict)

    def tools(self, env_id: str) -> tuple[list[dict], str]:
        """The served tools, or ([], why not); read once per environment (the class is parsed, not run)."""
        if env_id not in self._tools:
            spec = self.corpus.env(env_id)
            try:
                found = served_tools(spec.tools, spec.env_class_code, spec.env_class_name, self.tool_schemas), ""
            except (SchemaError, SyntaxError, RecursionError, ValueError) as exc:
                found = [], f"tools cannot be read from the class: {exc}"
            self._tools[env_id] = found
        return self._tools[env_id]

    def rows(self, query: str = "") -> list[EnvRow]:
        needle = query.strip().lower()
        rows = []
        for env_id, spec in self.corpus.envs.items():
            text = f"{env_id} {spec.env_class_name} {spec.environment_summary}".lower()
            if needle and needle not in text:
                continue
            tools, error = self.tools(env_id)
            rows.append(EnvRow(env_id=env_id, class_name=spec.env_class_name, summary=spec.environment_summary,
                               tools=len(tools), scenarios=len(self.corpus.scenarios_of(env_id)), tools_error=error))
        return rows

    def image(self, env_id: str) -> ImageState:
        return self.images.get(env_id, ImageState())

    def look_up_images(self) -> None:
        """Fill `images` (blocking; run it in a thread): each environment's content-addressed tag and whether the
        engine has it. Nothing is built."""
        try:
            from envscaler.images.build import existing_runtime, static_errors
            from envscaler.images.engine import EngineError, connect, image_exists
            from envscaler.images.env_image import content_hash, image_tag

            client = connect()
        except Exception as exc:  # EngineError, or no Docker SDK configuration: the page says so
            self.images = {e: ImageState(state="no engine", detail=str(exc)) for e in self.corpus.envs}
            return
        try:
            runtime = existing_runtime(client)
            if runtime is None:
                self.images = {e: ImageState(state="no runtime image",
                                             detail="run `envscaler-runtime images bootstrap`")
                               for e in self.corpus.envs}
                return
            runtime_id = client.images.get(runtime).id
            for env_id, spec in self.corpus.envs.items():
                errors = static_errors(self.corpus, env_id)
                if errors:
                    self.images[env_id] = ImageState(state="invalid", detail="; ".join(errors))
                    continue
                try:
                    tag = image_tag(env_id, content_hash(spec, self.corpus.scenarios_of(env_id), runtime_id,
                                                         self.tool_schemas))
                except (ValueError, RecursionError) as exc:
                    self.images[env_id] = ImageState(state="invalid", detail=str(exc))
                    continue
                self.images[env_id] = ImageState(tag=tag, state="built" if image_exists(client, tag) else "not built")
        except EngineError as exc:
            self.images = {e: ImageState(state="no engine", detail=str(exc)) for e in self.corpus.envs}
        finally:
            client.close()

    def start_image_lookup(self) -> threading.Thread:
        thread = threading.Thread(target=self.look_up_images, name="console-images", daemon=True)
        thread.start()
        return thread


FORMATTER = HtmlFormatter(cssclass="hl", linenos="table")


@lru_cache(maxsize=64)
def highlighted(code: str) -> str:
    """Python source as escaped, highlighted HTML (pygments escapes every character of the source)."""
    return highlight(code, PythonLexer(), FORMATTER)


def code_css() -> str:
    return FORMATTER.get_style_defs(".hl")


def source_of(spec: EnvSpec) -> str:
    return highlighted(spec.env_class_code)
