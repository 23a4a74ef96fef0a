from pytest_chroma_compat.cli.main import entry

entry()
