"""admin/designate.py's body checks, as DesignateAdapter.parse and validate answer: a table of
bodies and the 400 invalid_object message each gets (or the fields it yields)."""

from __future__ import annotations

import pytest

from minidns.admin.common import ApiError
from minidns.admin.designate import check_body, check_fields, check_options

S = "Provided object does not match schema: "
ZONE = {"email": (str, 255), "ttl": (int,), "description": (str, None, 160)}
TSIG = {"name": ((str,), 160), "scope": ((str,),), "ttl": ((int, None),)}


@pytest.mark.parametrize("body, kwargs, message", [
    ({"email": "h@example.org", "ttl": 300, "description": None}, {}, None),
    ({"name": "EXAMPLE.org."}, {"immutable": {"name": "example.org."}}, None),
    ({"name": "other.org."}, {"immutable": {"name": "example.org."}}, f"{S}name is immutable"),
    ({"id": "x"}, {"read_only": ("id",)}, f"{S}id is read-only"),
    ({"links": {}}, {}, f"{S}links is read-only"),
    ({"colour": "red"}, {}, f"{S}'colour' is not a valid field"),
    ({"ttl": None}, {}, f"{S}ttl may not be null"),
    ({"ttl": True}, {}, f"{S}ttl must be integer"),
    ({"ttl": "300"}, {}, f"{S}ttl must be integer"),
    ({"description": 5}, {}, f"{S}description must be string/null"),
    ({"email": "x" * 256}, {}, f"{S}email is longer than 255 characters"),
])  # fmt: skip
def test_check_body(body, kwargs, message):
    if message is None:
        assert check_body(body, ZONE, **kwargs) == {k: v for k, v in body.items() if k not in kwargs.get("immutable", {})}
        return
    with pytest.raises(ApiError) as e:
        check_body(body, ZONE, **kwargs)
    assert (e.value.status, e.value.type, e.value.message) == (400, "invalid_object", message)


@pytest.mark.parametrize("body, kwargs, message", [
    ({"name": "k", "scope": "POOL", "ttl": None}, {"required": ("name",)}, None),
    ({"id": "x"}, {"read_only": ("id",)}, f"{S}id is read-only"),
    ({"colour": "red"}, {}, f"{S}unknown field 'colour'"),
    ({"scope": "POOL"}, {"required": ("name", "scope")}, f"{S}name required"),
    ({"name": None}, {}, f"{S}name may not be null"),
    ({"ttl": "5"}, {}, f"{S}ttl must be integer/null"),
    ({"name": "k" * 161}, {}, f"{S}name is longer than 160 characters"),
    ({"scope": "s" * 256}, {}, f"{S}scope is longer than 255 characters"),
])  # fmt: skip
def test_check_fields(body, kwargs, message):
    if message is None:
        assert check_fields(body, TSIG, **kwargs) == body
        return
    with pytest.raises(ApiError) as e:
        check_fields(body, TSIG, **kwargs)
    assert (e.value.status, e.value.type, e.value.message) == (400, "invalid_object", message)


@pytest.mark.parametrize("body, message", [
    ({"algorithm": "ed25519", "split": True}, None),
    ({}, None),
    ({"split": 1}, f"{S}split must be a boolean"),
    ({"algorithm": True}, f"{S}algorithm must be a string"),
    ({"x" * 200: 1}, f"{S}'{'x' * 100}' is not a valid field"),
])  # fmt: skip
def test_check_options(body, message):
    fields = {"algorithm": str, "split": bool}
    if message is None:
        assert check_options(body, fields) == body
        return
    with pytest.raises(ApiError) as e:
        check_options(body, fields)
    assert (e.value.status, e.value.type, e.value.message) == (400, "invalid_object", message)
