"""A DLI client that puts requests on the wire the way the official Python SDK does
(huaweicloudsdkcore + huaweicloudsdkdli), built on python3-requests:

- one keep-alive requests.Session;
- headers on every call: User-Agent huaweicloud-usdk-python/3.0, Accept */*, Accept-Encoding,
  Content-Type application/json (GET and DELETE too), X-Project-Id;
- path parameters percent-encoded with nothing kept safe (quote(name, safe=""));
- query parameters sorted, %20 for spaces (never '+');
- bodies serialised with json.dumps defaults (spaces after separators), unset optional fields
  omitted, never null; DELETE sends Content-Length: 0, GET no body;
- status < 400 is success; errors raise with error_code/error_msg and X-Request-Id.
"""
import json
from urllib.parse import quote

import requests


class DliError(Exception):
    def __init__(self, status, code, msg, request_id):
        super().__init__(f"{status} {code}: {msg}")
        self.status, self.code, self.msg, self.request_id = status, code, msg, request_id


class SdkLikeClient:
    def __init__(self, endpoint, project_id, signer=None):
        self.endpoint = endpoint.rstrip("/")
        self.project_id = project_id
        self.signer = signer  # callable(method, url, headers, body) -> headers, for AK/SK
        self.session = requests.Session()

    def _call(self, method, path, query=None, body=None):
        query_string = "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}"
                                for k, v in sorted((query or {}).items()) if v is not None)
        url = self.endpoint + path + ("?" + query_string if query_string else "")
        headers = {
            "User-Agent": "huaweicloud-usdk-python/3.0",
            "Accept": "*/*",
            "Accept-Encoding": "gzip, deflate",
            "Content-Type": "application/json",
            "X-Project-Id": self.project_id,
        }
        data = None
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        elif method == "DELETE":
            data = b""
            headers["Content-Length"] = "0"
        if self.signer:
            headers = self.signer(method, url, headers, data or b"")
        r = self.session.request(method, url, data=data, headers=headers, timeout=120)
        if r.status_code >= 400:
            try:
                err = r.json()
            except ValueError:
                err = {}
            raise DliError(r.status_code, err.get("error_code"), err.get("error_msg"),
                           r.headers.get("X-Request-Id"))
        return r.json() if r.content else None

    def _base(self):
        return f"/v2.0/{quote(self.project_id, safe='')}/resources"

    # The calls of huaweicloudsdkdli's DliClient, by their SDK names.
    def upload_py_files(self, paths, group):
        return self._call("POST", self._base() + "/pyfiles", body={"paths": paths, "group": group})

    def upload_jar_group(self, paths, group):
        return self._call("POST", self._base() + "/jars", body={"paths": paths, "group": group})

    def upload_files(self, paths, group):
        return self._call("POST", self._base() + "/files", body={"paths": paths, "group": group})

    def create_resources(self, paths, kind, group=None, is_async=None, tags=None):
        return self._call("POST", self._base(), body={"paths": paths, "kind": kind, "group": group,
                                                       "is_async": is_async, "tags": tags})

    def list_resources(self, kind=None, tags=None):
        return self._call("GET", self._base(), query={"kind": kind, "tags": tags})

    def show_resource_info(self, resource_name, group=None):
        return self._call("GET", self._base() + "/" + quote(resource_name, safe=""),
                          query={"group": group})

    def delete_resource(self, resource_name, group=None):
        return self._call("DELETE", self._base() + "/" + quote(resource_name, safe=""),
                          query={"group": group})

    def change_resource_owner(self, new_owner, group_name=None, resource_name=None):
        return self._call("PUT", self._base() + "/owner",
                          body={"new_owner": new_owner, "group_name": group_name,
                                "resource_name": resource_name})
