"""The id of a message that cannot be opened (minidns/bus/message.py): the bus's, else a hash of
routing key and body, the same on every redelivery."""

from minidns.bus.message import Message, message_key


def test_a_message_key_is_the_bus_id_or_a_stable_hash():
    body = b'{"event": "VM.CREATE"}'
    first = message_key(Message(body, "cloudstack", None, "management-server.ActionEvent.VM-CREATE.VirtualMachine.x"))
    again = message_key(Message(body, "cloudstack", None, "management-server.ActionEvent.VM-CREATE.VirtualMachine.x", True))
    assert first == again and first.startswith("sha256:") and len(first) == 7 + 64
    assert message_key(Message(body, "cloudstack", None, "management-server.ActionEvent.VM-START.VirtualMachine.x")) != first
    assert message_key(Message(body + b" ", "cloudstack", None, "management-server.ActionEvent.VM-CREATE.VirtualMachine.x")) != first
    assert message_key(Message(body, "openstack", "amqp-id-1")) == "amqp-id-1"
    assert len(message_key(Message(body, "openstack", "x" * 300))) == 255
