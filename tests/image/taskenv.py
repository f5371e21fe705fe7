"""The environment the stack's task definition gives the container, as plain strings.

Reads ``infrastructure/ecs/stack.yaml`` with cfn-lint's loader and resolves each value the way
CloudFormation would with every parameter at its default: ``Ref`` to a parameter or pseudo
parameter, ``Fn::Sub``, ``Fn::If`` over the template's conditions. A load balancer attribute
stands in as ``bot.example.com``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from cfnlint.decode import cfn_yaml

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
ATTRIBUTE = "bot.example.com"


class _Resolver:
    def __init__(self, template: dict[str, Any]) -> None:
        self.parameters = {
            name: spec.get("Default", "") for name, spec in template["Parameters"].items()
        }
        self.conditions = template.get("Conditions", {})

    def value(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ((function, argument),) = node.items()
        if function == "Ref":
            return PSEUDO.get(argument, self.parameters.get(argument))
        if function == "Fn::Sub":
            return self._sub(argument)
        if function == "Fn::If":
            name, yes, no = argument
            return self.value(yes if self.condition(self.conditions[name]) else no)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(self.value(i)) for i in self.value(items))
        if function == "Fn::GetAtt":
            return ATTRIBUTE
        raise ValueError(f"cannot resolve {function} in the task environment")

    def condition(self, node: Any) -> bool:
        ((function, argument),) = node.items()
        if function == "Fn::Equals":
            left, right = (self.value(a) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not self.condition(argument[0])
        if function == "Condition":
            return self.condition(self.conditions[argument])
        raise ValueError(f"cannot evaluate {function} in a condition")

    def _sub(self, argument: Any) -> str:
        text, names = (argument, {}) if isinstance(argument, str) else argument
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            if name in names:
                value = self.value(names[name])
            elif "." in name:
                value = ATTRIBUTE
            else:
                value = PSEUDO.get(name, self.parameters.get(name))
            out.extend([before, str(value)])
        out.append(rest)
        return "".join(out)


def container_environment(stack: Path) -> dict[str, str]:
    """Name → value of the bot container's plain environment in ``stack``."""
    template = cfn_yaml.loads(stack.read_text())
    resolver = _Resolver(template)
    definition = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    return {item["Name"]: str(resolver.value(item["Value"])) for item in definition["Environment"]}


def container_secret_names(stack: Path) -> list[str]:
    """The names of the variables the task definition takes from Secrets Manager."""
    template = cfn_yaml.loads(stack.read_text())
    definition = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    return [item["Name"] for item in definition["Secrets"]]


def envfile_module(root: Path) -> ModuleType:
    """``infrastructure/envfile.py``, which decides what deploy.sh writes to the app secret."""
    spec = importlib.util.spec_from_file_location("envfile", root / "infrastructure" / "envfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def deployed_secret(root: Path) -> dict[str, str]:
    """The app secret deploy.sh writes for an env file that gives no credentials."""
    values: dict[str, str] = envfile_module(root).secret({}, "")
    return values
