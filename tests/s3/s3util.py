#!/usr/bin/python3
"""s3util.py - small boto3 command line for the S3 tests and benches: make and
remove buckets, upload a blob directory the way a user would, list, download
(also everything under a prefix, timed: the "boto3 ceiling" of a bench).

Usage: s3util.py [--endpoint URL] [--retries N] [--timeout S] COMMAND ...
  mb BUCKET                          create a bucket (fine if it exists)
  rb BUCKET                          delete every object (and unfinished
                                     multipart upload), then the bucket
  upload DIR s3://B/PREFIX [--recursive] [--threads N]
                                     every regular file of DIR (dot files too;
                                     symlinks followed, subdirectories only with
                                     --recursive) to PREFIX/NAME, in parallel,
                                     multipart above --multipart-threshold
                                     (default 8 MiB, parts --part-size 8 MiB),
                                     as `aws s3 cp --recursive` does
  upload-file FILE s3://B/KEY        one file (multipart as above)
  download s3://B/KEY FILE           one GET, streamed to FILE ("-": stdout)
  download-all s3://B/PREFIX DIR [--threads N] [--discard]
                                     list PREFIX, GET every object whole in
                                     parallel into DIR/REST-OF-KEY (--discard:
                                     read and drop), print
                                     "bytes=N seconds=S objects=K" (listing
                                     included in S)
  rm s3://B/KEY                      delete one object
  ls s3://B/PREFIX                   "KEY SIZE ETAG" per object (ETag unquoted)
  put-bytes s3://B/KEY               PUT the bytes read from stdin
  upload-tensors NPY s3://B/PREFIX [--threads N]
                                     tensor i of the .npy (along axis 0) as raw
                                     bytes (C order) at PREFIX/%06d.bin
Environment: endpoint from --endpoint, else AWS_ENDPOINT_URL, else RGW_ENDPOINT;
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION or AWS_DEFAULT_REGION
(default us-east-1). Path-style addressing, SigV4. --retries N is the total
number of attempts per request (1 = no retry; default: botocore's standard
mode with 3). Success is silent (except ls and download-all); any error is one
line on stderr and exit status 1.
"""
import argparse
import concurrent.futures
import os
import sys
import threading
import time

CHUNK = 1 << 20
MiB = 1 << 20


class Fail(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise Fail("usage: %s (see --help)" % message)


def parse_url(url, need_key=False):
    """s3://BUCKET/REST -> (bucket, rest)."""
    if not url.startswith("s3://"):
        raise Fail("not an s3:// URL: %r" % url)
    bucket, _, rest = url[5:].partition("/")
    if not bucket:
        raise Fail("no bucket in %r" % url)
    if need_key and not rest:
        raise Fail("no key in %r" % url)
    return bucket, rest


def join_key(prefix, name):
    if not prefix:
        return name
    return prefix + name if prefix.endswith("/") else prefix + "/" + name


def make_client(args, threads=10):
    import boto3
    from botocore.config import Config
    endpoint = args.endpoint or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("RGW_ENDPOINT")
    if not endpoint:
        raise Fail("no endpoint: set RGW_ENDPOINT or AWS_ENDPOINT_URL (or --endpoint)")
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(v):
            raise Fail("%s is not set" % v)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # botocore's "max_attempts" counts retries (total = +1); "total_max_attempts" is the total.
    retries = {"mode": "standard"}
    if args.retries:
        retries["total_max_attempts"] = args.retries
    cfg = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                 retries=retries, connect_timeout=args.timeout, read_timeout=args.timeout,
                 max_pool_connections=max(10, threads + 2))
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=region,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"], config=cfg)


def transfer_config(args, threads):
    from boto3.s3.transfer import TransferConfig
    return TransferConfig(multipart_threshold=args.multipart_threshold,
                          multipart_chunksize=args.part_size,
                          max_concurrency=threads, use_threads=True)


def list_objects(s3, bucket, prefix):
    token = None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            yield o
        if not r.get("IsTruncated"):
            return
        token = r["NextContinuationToken"]


def parallel(threads, fn, items):
    """Run fn(item) on a thread pool; raise the first error."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(fn, it) for it in items]
        try:
            for f in concurrent.futures.as_completed(futures):
                f.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return [f.result() for f in futures]


def upload_many(args, s3, pairs, threads):
    """pairs: [(local path, bucket, key)], one transfer manager for all (as
    the aws CLI does: files and parts share the --threads connections)."""
    from boto3.s3.transfer import create_transfer_manager
    with create_transfer_manager(s3, transfer_config(args, threads)) as tm:
        futures = [tm.upload(path, bucket, key) for path, bucket, key in pairs]
        for f in futures:
            f.result()


def cmd_mb(args, s3):
    from botocore.exceptions import ClientError
    try:
        s3.create_bucket(Bucket=args.bucket)
    except ClientError as e:
        if e.response["Error"].get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def cmd_rb(args, s3):
    b = args.bucket
    keys = [o["Key"] for o in list_objects(s3, b, "")]
    for i in range(0, len(keys), 1000):
        r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                "Quiet": True})
        if r.get("Errors"):
            e = r["Errors"][0]
            raise Fail("delete %s: %s %s" % (e.get("Key"), e.get("Code"), e.get("Message")))
    for u in s3.list_multipart_uploads(Bucket=b).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=b, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=b)


def cmd_upload(args, s3):
    bucket, prefix = parse_url(args.url)
    if not os.path.isdir(args.dir):
        raise Fail("not a directory: %s" % args.dir)
    pairs = []
    if args.recursive:
        for root, dirs, files in os.walk(args.dir, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                if os.path.isfile(path):
                    rel = os.path.relpath(path, args.dir).replace(os.sep, "/")
                    pairs.append((path, bucket, join_key(prefix, rel)))
    else:
        for e in sorted(os.scandir(args.dir), key=lambda e: e.name):
            if e.is_file():                 # follows symlinks; skips dirs, fifos, ...
                pairs.append((e.path, bucket, join_key(prefix, e.name)))
    upload_many(args, s3, pairs, args.threads)


def cmd_upload_file(args, s3):
    bucket, key = parse_url(args.url, need_key=True)
    if not os.path.isfile(args.file):
        raise Fail("not a regular file: %s" % args.file)
    upload_many(args, s3, [(args.file, bucket, key)], args.threads)


def stream_to(body, f):
    n = 0
    while True:
        b = body.read(CHUNK)
        if not b:
            return n
        n += len(b)
        if f is not None:
            f.write(b)


def cmd_download(args, s3):
    bucket, key = parse_url(args.url, need_key=True)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    if args.file == "-":
        stream_to(body, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        tmp = args.file + ".part"
        try:
            with open(tmp, "wb") as f:
                stream_to(body, f)
            os.replace(tmp, args.file)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def cmd_download_all(args, s3):
    bucket, prefix = parse_url(args.url)
    t0 = time.monotonic()
    objs = list(list_objects(s3, bucket, prefix))
    made = set()
    lock = threading.Lock()

    def local_path(key):
        rel = key[len(prefix):].lstrip("/") if prefix else key
        parts = rel.split("/")
        if not rel or any(p in ("", ".", "..") for p in parts):
            raise Fail("key %r does not map to a file name under %s" % (key, args.dir))
        return os.path.join(args.dir, *parts)

    def get(o):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]
        if args.discard:
            n = stream_to(body, None)
        else:
            path = local_path(o["Key"])
            d = os.path.dirname(path)
            with lock:
                if d not in made:
                    os.makedirs(d, exist_ok=True)
                    made.add(d)
            with open(path, "wb") as f:
                n = stream_to(body, f)
        if n != o["Size"]:
            raise Fail("%s: got %d bytes, listed size %d" % (o["Key"], n, o["Size"]))
        return n

    if not args.discard:
        for o in objs:
            local_path(o["Key"])            # fail before downloading anything
        os.makedirs(args.dir, exist_ok=True)
    total = sum(parallel(args.threads, get, objs))
    print("bytes=%d seconds=%.3f objects=%d" % (total, time.monotonic() - t0, len(objs)))


def cmd_rm(args, s3):
    bucket, key = parse_url(args.url, need_key=True)
    s3.delete_object(Bucket=bucket, Key=key)


def cmd_ls(args, s3):
    bucket, prefix = parse_url(args.url)
    out = sys.stdout
    for o in list_objects(s3, bucket, prefix):
        out.write("%s %d %s\n" % (o["Key"], o["Size"], o["ETag"].strip('"')))


def cmd_put_bytes(args, s3):
    bucket, key = parse_url(args.url, need_key=True)
    s3.put_object(Bucket=bucket, Key=key, Body=sys.stdin.buffer.read())


def cmd_upload_tensors(args, s3):
    import numpy as np
    bucket, prefix = parse_url(args.url)
    try:
        a = np.load(args.npy, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise Fail("cannot read %s: %s" % (args.npy, e))
    if a.ndim == 0:
        raise Fail("%s holds a scalar, not tensors" % args.npy)

    def put(i):
        s3.put_object(Bucket=bucket, Key=join_key(prefix, "%06d.bin" % i),
                      Body=np.ascontiguousarray(a[i]).tobytes())

    parallel(args.threads, put, range(a.shape[0]))


def size_arg(s):
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if s and s[-1].lower() in mult:
            return int(s[:-1]) * mult[s[-1].lower()]
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("not a size: %r" % s)


def build_parser():
    p = Parser(prog="s3util.py", description="boto3 helper for the S3 tests",
               formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--endpoint", help="S3 endpoint URL (default AWS_ENDPOINT_URL or RGW_ENDPOINT)")
    p.add_argument("--retries", type=int, default=0, help="total attempts per request (1 = no retry)")
    p.add_argument("--timeout", type=float, default=60, help="connect and read timeout, seconds")
    sub = p.add_subparsers(dest="cmd", parser_class=Parser)
    sub.required = True

    def add(name, fn, *pos, threads=False, transfer=False):
        sp = sub.add_parser(name)
        for a in pos:
            sp.add_argument(a)
        if threads:
            sp.add_argument("--threads", type=int, default=8)
        if transfer:
            sp.add_argument("--multipart-threshold", type=size_arg, default=8 * MiB)
            sp.add_argument("--part-size", type=size_arg, default=8 * MiB)
        sp.set_defaults(fn=fn)
        return sp

    add("mb", cmd_mb, "bucket")
    add("rb", cmd_rb, "bucket")
    add("upload", cmd_upload, "dir", "url", threads=True, transfer=True).add_argument(
        "--recursive", action="store_true")
    add("upload-file", cmd_upload_file, "file", "url", threads=True, transfer=True)
    add("download", cmd_download, "url", "file")
    add("download-all", cmd_download_all, "url", "dir", threads=True).add_argument(
        "--discard", action="store_true")
    add("rm", cmd_rm, "url")
    add("ls", cmd_ls, "url")
    add("put-bytes", cmd_put_bytes, "url")
    add("upload-tensors", cmd_upload_tensors, "npy", "url", threads=True)
    return p


def describe(e):
    """One line for any error boto3 or the OS may raise."""
    from botocore.exceptions import ClientError
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        st = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return "%s: HTTP %s %s%s" % (e.operation_name, st, err.get("Code", "?"),
                                     (" (%s)" % err["Message"]) if err.get("Message") else "")
    msg = str(e) or type(e).__name__
    return "%s: %s" % (type(e).__name__, msg.replace("\n", " "))


def main(argv):
    what = "s3util"
    try:
        args = build_parser().parse_args(argv)
        what = "s3util: %s %s" % (args.cmd, getattr(args, "url", None) or getattr(args, "bucket", ""))
        threads = getattr(args, "threads", 1)
        if threads < 1:
            raise Fail("--threads must be >= 1")
        s3 = make_client(args, threads)
        args.fn(args, s3)
    except Fail as e:
        print("s3util: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("s3util: interrupted", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1
    except Exception as e:  # boto3, OS errors: one line, no traceback
        print("%s: %s" % (what, describe(e)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
