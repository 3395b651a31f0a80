"""A small Alibaba-OSS-speaking server for tests: in memory, path-style, and strict about signatures.

No OSS emulator exists on PyPI or npm, so the suite carries this one. It checks OSS V1 signatures
(``Authorization: OSS ak:sig`` headers and signed URLs with ``Expires``), request-time skew, URL expiry
and Content-MD5, and speaks enough of the API for ossfs / oss2 uploads: PutBucket, PutObject, GetObject
(with Range), HeadObject, GetObjectMeta, DeleteObject, and multipart (Initiate, UploadPart, ListParts,
Complete, Abort). XML has no namespace (oss2 parses without one); every response carries the
``x-oss-hash-crc64ecma`` that oss2 compares with its own.

    server = OSSServer(keys={"test-ak": "test-secret"}, buckets=["media"]).start()
    server.endpoint  # http://127.0.0.1:PORT        server.calls  # ["PutObject", ...]
    python -m tests.storage_servers.oss_server --port 9500 --key ak:sk --bucket media
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from oss2.auth import ProviderAuth
from oss2.utils import Crc64

__all__ = ["OSSServer"]

_SUBRESOURCES = ProviderAuth._subresource_key_set  # which query keys are signed: the client's own list
_SKEW = 900


def _crc(data: bytes) -> str:
    crc = Crc64()
    crc.update(data)
    return str(crc.crc)


def _xml(root: str, children: list[tuple[str, Any]]) -> bytes:
    top = ET.Element(root)

    def add(parent: ET.Element, items: list[tuple[str, Any]]) -> None:
        for tag, value in items:
            node = ET.SubElement(parent, tag)
            if isinstance(value, list):
                add(node, value)
            else:
                node.text = str(value)

    add(top, children)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top)


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class OSSServer:
    def __init__(self, keys: dict[str, str], buckets: list[str], port: int = 0) -> None:
        self.keys = dict(keys)
        self.buckets: dict[str, dict[str, dict[str, Any]]] = {b: {} for b in buckets}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"oss": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="oss-server", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> OSSServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    # -- auth --------------------------------------------------------------------------------------

    def check_auth(self, method: str, bucket: str, key: str, q: dict[str, str], h: dict[str, str]) -> None:
        now = time.time()
        if "Signature" in q:  # a signed URL: Expires stands where the Date header would
            ak, sig, date = q.get("OSSAccessKeyId", ""), q["Signature"], q.get("Expires", "0")
            if int(date) < now:
                raise _Fail(403, "AccessDenied", "Request has expired.")
        elif h.get("authorization", "").startswith("OSS "):
            ak, _, sig = h["authorization"][4:].rpartition(":")
            date = h.get("x-oss-date") or h.get("date", "")
            try:
                skew = abs(now - parsedate_to_datetime(date).timestamp())
            except (TypeError, ValueError):
                raise _Fail(403, "AccessDenied", "Invalid Date header.") from None
            if skew > _SKEW:
                raise _Fail(
                    403, "RequestTimeTooSkewed", "The difference between the request time is too large."
                )
        else:
            raise _Fail(403, "AccessDenied", "AccessDenied: anonymous access is not allowed.")
        if ak not in self.keys:
            raise _Fail(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.")
        oss_headers = "".join(f"{k}:{v}\n" for k, v in sorted(h.items()) if k.startswith("x-oss-"))
        sub = "&".join(k if v == "" else f"{k}={v}" for k, v in sorted(q.items()) if k in _SUBRESOURCES)
        resource = (f"/{bucket}/{key}" if bucket else "/") + (f"?{sub}" if sub else "")
        to_sign = "\n".join([method, h.get("content-md5", ""), h.get("content-type", ""), date])
        to_sign += "\n" + oss_headers + resource
        digest = hmac.new(self.keys[ak].encode(), to_sign.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), sig):
            raise _Fail(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")

    # -- operations (called with self.lock held) ----------------------------------------------------

    def objects(self, bucket: str) -> dict[str, dict[str, Any]]:
        if bucket not in self.buckets:
            raise _Fail(404, "NoSuchBucket", "The specified bucket does not exist.")
        return self.buckets[bucket]

    def store(self, bucket: str, key: str, data: bytes, etag: str | None = None) -> dict[str, Any]:
        obj = {
            "data": data,
            "etag": etag or hashlib.md5(data).hexdigest().upper(),
            "mtime": time.time(),
            "crc": _crc(data),
        }
        self.objects(bucket)[key] = obj
        return obj

    def complete(self, bucket: str, key: str, upload_id: str, body: bytes) -> dict[str, Any]:
        upload = self.uploads.pop(upload_id, None)
        if upload is None or (upload["bucket"], upload["key"]) != (bucket, key):
            raise _Fail(404, "NoSuchUpload", "The specified upload does not exist.")
        wanted = [
            (int(p.findtext("PartNumber", "0")), p.findtext("ETag", "").strip('"'))
            for p in ET.fromstring(body).iter("Part")
        ]
        if not wanted or [n for n, _ in wanted] != sorted({n for n, _ in wanted}):
            raise _Fail(400, "InvalidPartOrder", "Parts must be listed in ascending order.")
        chunks = []
        for number, etag in wanted:
            part = upload["parts"].get(number)
            if part is None or part["etag"] != etag:
                raise _Fail(400, "InvalidPart", f"Part {number} was not uploaded or its ETag differs.")
            chunks.append(part["data"])
        return self.store(bucket, key, b"".join(chunks), etag=f"{uuid.uuid4().hex.upper()}-{len(wanted)}")


class _Handler(BaseHTTPRequestHandler):
    oss: OSSServer
    protocol_version = "HTTP/1.1"  # oss2's requests session keeps connections alive

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return out
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        bucket, _, raw_key = url.path.lstrip("/").partition("/")
        key = unquote(raw_key)
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        h = {k.lower(): v for k, v in self.headers.items()}
        body = self._body()
        try:
            self.oss.check_auth(method, bucket, key, q, h)
            md5 = h.get("content-md5")
            if md5 and base64.b64encode(hashlib.md5(body).digest()).decode() != md5:
                raise _Fail(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
            with self.oss.lock:
                self._dispatch(method, bucket, key, q, h, body)
        except _Fail as fail:
            error = _xml("Error", [("Code", fail.code), ("Message", fail.message), ("RequestId", "test"),
                                   ("HostId", "127.0.0.1")])  # fmt: skip
            headers = {"x-oss-err": base64.b64encode(error).decode()} if method == "HEAD" else {}
            self._send(fail.status, error, headers, "application/xml")

    def _dispatch(
        self, method: str, bucket: str, key: str, q: dict[str, str], h: dict[str, str], body: bytes
    ) -> None:
        oss = self.oss
        if not key:
            if method == "PUT":
                oss.calls.append("PutBucket")
                oss.buckets.setdefault(bucket, {})
                return self._send(200)
            raise _Fail(501, "NotImplemented", f"{method} on a bucket is not supported here.")
        if method == "POST" and "uploads" in q:
            oss.calls.append("InitiateMultipartUpload")
            oss.objects(bucket)
            upload_id = uuid.uuid4().hex.upper()
            oss.uploads[upload_id] = {"bucket": bucket, "key": key, "parts": {}}
            fields = [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)]
            return self._send(200, _xml("InitiateMultipartUploadResult", fields), {}, "application/xml")
        if "uploadId" in q:
            return self._multipart(method, bucket, key, q, body)
        objects = oss.objects(bucket)
        if method == "PUT" and "x-oss-copy-source" in h:
            return self._copy(bucket, key, h["x-oss-copy-source"])
        if method == "PUT":
            oss.calls.append("PutObject")
            obj = oss.store(bucket, key, body)
            return self._send(200, b"", {"ETag": f'"{obj["etag"]}"', "x-oss-hash-crc64ecma": obj["crc"]})
        if method == "DELETE":
            oss.calls.append("DeleteObject")
            objects.pop(key, None)
            return self._send(204)
        obj = objects.get(key)
        if obj is None:
            raise _Fail(404, "NoSuchKey", "The specified key does not exist.")
        headers = {
            "ETag": f'"{obj["etag"]}"',
            "Last-Modified": formatdate(obj["mtime"], usegmt=True),
            "x-oss-object-type": "Multipart" if "-" in obj["etag"] else "Normal",
            "x-oss-hash-crc64ecma": obj["crc"],
        }
        if method == "HEAD":
            oss.calls.append("GetObjectMeta" if "objectMeta" in q else "HeadObject")
            return self._send(200, b"", headers, length=len(obj["data"]))
        oss.calls.append("GetObject")
        data: bytes = obj["data"]
        if rng := h.get("range", "").removeprefix("bytes="):
            first, _, last = rng.partition("-")
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(int(last), len(data) - 1) if first and last else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            del headers["x-oss-hash-crc64ecma"]  # a range has no whole-object CRC to compare
            return self._send(206, data[start : end + 1], headers)
        return self._send(200, data, headers)

    def _copy(self, bucket: str, key: str, source: str) -> None:
        """CopyObject: ``x-oss-copy-source: /bucket/key`` (URL-quoted), made here, no body sent."""
        self.oss.calls.append("CopyObject")
        source_bucket, _, source_key = unquote(source).lstrip("/").partition("/")
        obj = self.oss.objects(source_bucket).get(source_key)
        if obj is None:
            raise _Fail(404, "NoSuchKey", "The specified key does not exist.")
        copied = self.oss.store(bucket, key, obj["data"], obj["etag"])
        modified = formatdate(copied["mtime"], usegmt=True)
        result = _xml("CopyObjectResult", [("ETag", f'"{copied["etag"]}"'), ("LastModified", modified)])
        self._send(200, result, {"ETag": f'"{copied["etag"]}"'}, "application/xml")

    def _multipart(self, method: str, bucket: str, key: str, q: dict[str, str], body: bytes) -> None:
        oss = self.oss
        upload = oss.uploads.get(q["uploadId"])
        if upload is None:
            raise _Fail(404, "NoSuchUpload", "The specified upload does not exist.")
        if method == "PUT":
            oss.calls.append("UploadPart")
            etag = hashlib.md5(body).hexdigest().upper()
            upload["parts"][int(q["partNumber"])] = {"data": body, "etag": etag, "mtime": time.time()}
            return self._send(200, b"", {"ETag": f'"{etag}"', "x-oss-hash-crc64ecma": _crc(body)})
        if method == "GET":
            oss.calls.append("ListParts")
            parts: list[tuple[str, Any]] = [("Bucket", bucket), ("Key", key), ("UploadId", q["uploadId"])]
            parts += [("IsTruncated", "false"), ("NextPartNumberMarker", "0")]
            for number, part in sorted(upload["parts"].items()):
                modified = formatdate(part["mtime"], usegmt=True)
                fields = [("PartNumber", number), ("ETag", f'"{part["etag"]}"'), ("Size", len(part["data"]))]
                parts.append(("Part", [*fields, ("LastModified", modified)]))
            return self._send(200, _xml("ListPartsResult", parts), {}, "application/xml")
        if method == "POST":
            oss.calls.append("CompleteMultipartUpload")
            obj = oss.complete(bucket, key, q["uploadId"], body)
            result = _xml("CompleteMultipartUploadResult", [("Bucket", bucket), ("Key", key),
                                                            ("ETag", f'"{obj["etag"]}"')])  # fmt: skip
            return self._send(200, result, {"x-oss-hash-crc64ecma": obj["crc"]}, "application/xml")
        oss.calls.append("AbortMultipartUpload")
        oss.uploads.pop(q["uploadId"], None)
        return self._send(204)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/octet-stream",
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("x-oss-request-id", uuid.uuid4().hex)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description="OSS test server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--key", action="append", default=[], help="AK:SECRET (repeatable)")
    parser.add_argument("--bucket", action="append", default=[])
    args = parser.parse_args()
    keys = dict(k.split(":", 1) for k in args.key) or {"test-ak": "test-secret"}
    server = OSSServer(keys, args.bucket or ["media"], port=args.port).start()
    print(f"OSS test server on {server.endpoint}", flush=True)
    try:
        server.thread.join()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
