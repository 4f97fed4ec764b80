"""The `Meta` view reads raw API dicts whatever they leave out, and sees later writes."""

from runai_lite.backends.kube.meta import Meta, set_annotations


def test_absent_maps_read_as_empty_and_absent_fields_as_none():
    meta = Meta({"metadata": {"name": "p"}})
    assert (meta.name, meta.namespace, meta.uid, meta.deleting) == ("p", None, None, False)
    assert dict(meta.annotations) == {} and meta.annotation("x") is None and meta.label("x") is None
    assert Meta({"metadata": {"annotations": None, "labels": None}}).labels == {}


def test_the_view_reads_through_to_the_object():
    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}}}
    meta = Meta(pod)
    set_annotations(pod, {"runai-lite/allocation": "{}"})
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert meta.annotation("runai-lite/allocation") == "{}" and meta.label("a") == "1" and meta.deleting
