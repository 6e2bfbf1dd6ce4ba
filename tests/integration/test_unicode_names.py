"""Issue 15, resource names in one Unicode form, through the real server with real AK/SK
signatures: a name typed decomposed (NFD) and composed (NFC) is one package, stored in NFC; names
with invisible, bidi-control or unassigned code points are refused with DLI.0001 and nothing is
stored, whether they come from a source URL, a path segment, a body or a tag."""
import hashlib
from urllib.parse import quote

import pytest
import requests

from sdk_client import DliError, SdkLikeClient
from test_auth import ALICE, USERS, PySdkSigner, write_credentials

NFD = "cafe\u0301.py"  # e + COMBINING ACUTE ACCENT
NFC = "caf\u00e9.py"   # LATIN SMALL LETTER E WITH ACUTE


@pytest.fixture
def signed(start_server, tmp_path):
    creds = tmp_path / "credentials.json"
    write_credentials(creds, USERS)
    server = start_server("--credentials", str(creds))
    return server, SdkLikeClient(server.url, "p1", signer=PySdkSigner(**ALICE))


@pytest.fixture
def unicode_sources(sources):
    """Files under the Unicode names, beside the shared sources nginx serves."""
    root, _ = sources
    files = {NFD: b"print('decomposed')\n", NFC: b"print('composed')\n",
             "x\u202egnp.py": b"bidi\n", "zero\u200bwidth.py": b"zwsp\n",
             "un\u0378assigned.py": b"cn\n"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def url_of(nginx, name):
    return f"{nginx.url}/{quote(name)}"


def blob_count(server):
    return sum(1 for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


def rejected(call):
    with pytest.raises(DliError) as caught:
        call()
    assert (caught.value.status, caught.value.code) == (400, "DLI.0001"), caught.value.msg
    return caught.value.msg


def test_a_name_typed_decomposed_and_composed_is_one_package(signed, nginx, unicode_sources):
    server, client = signed
    first = client.create_resources([url_of(nginx, NFD)], "pyFile")
    assert first["resource_names"] == [NFC]  # stored composed
    second = client.create_resources([url_of(nginx, NFC)], "pyFile")
    assert second["resource_names"] == [NFC]
    listing = client.list_resources()
    assert listing["total"] == 1, listing
    # Either spelling finds it, and it holds the bytes of the second upload.
    for spelling in (NFD, NFC):
        shown = client.show_resource_info(spelling)
        assert shown["resource_name"] == NFC
        assert shown["sha256"] == hashlib.sha256(unicode_sources[NFC]).hexdigest()
    # Two spellings in one request are one name twice.
    msg = rejected(lambda: client.upload_py_files([url_of(nginx, NFD), url_of(nginx, NFC)], "g"))
    assert f"Duplicate resource name '{NFC}'" in msg
    # A decomposed name in a path, signed, deletes the composed package.
    assert client.delete_resource(NFD) is None
    assert client.list_resources()["total"] == 0


@pytest.mark.parametrize("name,code", [("x\u202egnp.py", "U+202E"),
                                       ("zero\u200bwidth.py", "U+200B"),
                                       ("un\u0378assigned.py", "U+0378")])
def test_invisible_bidi_and_unassigned_names_are_refused(signed, nginx, unicode_sources, name,
                                                         code):
    server, client = signed
    client.create_resources([url_of(nginx, "a.py")], "pyFile")
    blobs = blob_count(server)

    msg = rejected(lambda: client.create_resources([url_of(nginx, name)], "pyFile"))
    assert code in msg and name not in msg  # named by code point, never echoed
    rejected(lambda: client.upload_py_files([url_of(nginx, "b.py"), url_of(nginx, name)], "g"))
    rejected(lambda: client.create_resources([url_of(nginx, "c.py")], "pyFile",
                                             tags=[{"key": name, "value": "v"}]))
    rejected(lambda: client.show_resource_info(name))
    # A direct upload of the bytes under that name, signed over its body.
    body = b"direct bytes\n"
    url = f"{server.url}/v2.0/p1/resources/{quote(name, safe='')}/content?kind=file"
    headers = PySdkSigner(**ALICE)("PUT", url, {"Content-Type": "application/octet-stream",
                                                "User-Agent": "t", "X-Project-Id": "p1"}, body)
    r = requests.put(url, data=body, headers=headers, timeout=30)
    assert (r.status_code, r.json()["error_code"]) == (400, "DLI.0001"), r.text

    listing = client.list_resources()
    assert listing["total"] == 1 and listing["resources"][0]["resource_name"] == "a.py", listing
    assert listing.get("groups", []) == []
    assert blob_count(server) == blobs  # no bytes kept either
