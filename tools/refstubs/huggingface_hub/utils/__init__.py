import importlib.util


class HfHubHTTPError(Exception):
    def __init__(self, *a, response=None, **k):
        super().__init__(*a)
        self.response = response


class RepositoryNotFoundError(HfHubHTTPError):
    pass


class RevisionNotFoundError(HfHubHTTPError):
    pass


class EntryNotFoundError(HfHubHTTPError):
    pass


class LocalEntryNotFoundError(EntryNotFoundError, FileNotFoundError, ValueError):
    pass


class OfflineModeIsEnabled(ConnectionError):
    pass


def validate_hf_hub_args(fn):
    return fn


def is_jinja_available():
    return importlib.util.find_spec("jinja2") is not None
