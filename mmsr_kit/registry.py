"""Registries: one dict per kind of component, filled by a decorator.

The CLI (`mmsr list`), the config validator, the widgets and the error messages
all read the same dicts, so adding a component is one function or class and one
decorator, nothing else to edit.
"""
import difflib


class ConfigError(ValueError):
    """A configuration the kit cannot run: the CLI prints its message and exits with status 2."""


class UnknownNameError(KeyError, ConfigError):
    """A name that is not in a registry (or a config key that does not exist)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


def did_you_mean(name, choices):
    """" (did you mean 'film'?)" for the choice closest to `name`, or "" when none is close."""
    close = difflib.get_close_matches(str(name), sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name_message(kind, name, choices, guess=None):
    """"unknown fusion 'flim'; choose one of: ... (did you mean 'film'?)"; `guess` is matched instead of `name`."""
    listed = ", ".join(sorted(choices))
    return f"unknown {kind} {name!r}; choose one of: {listed}" + did_you_mean(guess or name, choices)


class Registry(dict):
    """A name -> object dict whose lookups fail with the list of valid names."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def register(self, name):
        def decorator(obj):
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = obj
            return obj

        return decorator

    def __getitem__(self, name):
        if name not in self:
            raise UnknownNameError(unknown_name_message(self.kind, name, self.keys()))
        return super().__getitem__(name)

    def names(self):
        return sorted(self.keys())


DATASETS = Registry("dataset")  # name -> function(DataConfig) -> RecDataset
SEQUENCES = Registry("sequence model")  # name -> nn.Module class
MODES = Registry("mode")  # name -> function(Config, SplitData) -> item scorer parts
