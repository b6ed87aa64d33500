"""mkdocs-gen-files script: the config reference (from conf/) and the API reference (from docstrings)."""

from pathlib import Path

import mkdocs_gen_files

from retentive.docsite.config_reference import group_page, groups, index_page, top_level_page

ROOT = Path(__file__).resolve().parent.parent
CONF, SRC = ROOT / "conf", ROOT / "src"

with mkdocs_gen_files.open("reference/config/index.md", "w") as page:
    page.write(index_page(CONF))
with mkdocs_gen_files.open("reference/config/top_level.md", "w") as page:
    page.write(top_level_page(CONF / "train.yaml"))
for group in groups(CONF):
    with mkdocs_gen_files.open(f"reference/config/{group.name}.md", "w") as page:
        page.write(group_page(group))

modules = []
for path in sorted((SRC / "retentive").rglob("*.py")):
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] in ("__main__", "__init__"):
        continue
    name = ".".join(parts)
    modules.append(name)
    with mkdocs_gen_files.open(f"reference/api/{name}.md", "w") as page:
        page.write(f"# `{name}`\n\n::: {name}\n")
with mkdocs_gen_files.open("reference/api/index.md", "w") as page:
    page.write("# API reference\n\nGenerated from the docstrings of every module.\n\n"
               + "\n".join(f"- [`{m}`]({m}.md)" for m in modules) + "\n")
