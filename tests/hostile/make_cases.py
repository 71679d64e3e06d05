#!/usr/bin/python3
"""Writes tests/hostile/cases/: one directory per malformed input, named for
what is wrong with it, each with an `expect` file the runner checks:

    run: info | verify | cat | import | blobfs-config | blobfs-source |
         mount-name | signal | limit-as | limit-nofile
    path: the argument (relative to the case directory)
    exit: the exit code wanted (mount-name: an errno name; signal: "ends"
          or "ignored"; limit-*: 0 when every tensor read back right)
    message: text the one-line error must contain
    special: NAME KIND   (any number) after copying, NAME is replaced by a
          special file that git cannot hold: fifo, chardev (like /dev/zero),
          socket, dir, or fifo-as-config (an absolute path: the run uses it)

Run it again only to change the set; the cases themselves are committed.
Needs Debian's python3-numpy (for npy inputs).
"""
import io, json, os, shutil, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cases")
CONF = ('{\n  "__notes__": {\n    "args": [],\n    "class_name": "TensorBlob",\n    "kwargs": {},\n'
        '    "using_default_values": []\n  },\n  "block_size": 2,\n  "dtype": "float32",\n  "shape": [\n    3\n  ]\n}\n')
B0, B1 = "0a0a0a0a-0000-4000-8000-000000000000", "1b1b1b1b-0000-4000-8000-000000000000"
cases = []

def case(name, files, run, path, code, message, special=()):
    cases.append((name, files, run, path, code, message, special))

def blob(conf=CONF, stat=None, blocks=None, extra=None):
    files = {".conf": conf.encode() if isinstance(conf, str) else conf}
    if stat is not None:
        files[".stat"] = stat.encode() if isinstance(stat, str) else stat
    for name, size in (blocks if blocks is not None else {B0: 24, B1: 24}).items():
        files[name] = bytes(size)
    files.update(extra or {})
    return files

GOOD_STAT = json.dumps({"len": 3, "bds": [B0, B1]}, separators=(",", ":"))

# .conf
case("conf_empty", blob(conf=""), "info", ".", 3, ".conf: invalid JSON")
case("conf_truncated", blob(conf=CONF[:60], stat=GOOD_STAT), "info", ".", 3, ".conf: invalid JSON")
case("conf_not_utf8", blob(conf=b'{"dtype": "\xff\xfe"}', stat=GOOD_STAT), "info", ".", 3, ".conf: invalid JSON")
case("conf_deeply_nested", blob(conf="[" * 100000 + "]" * 100000, stat=GOOD_STAT), "info", ".", 3, ".conf")
case("conf_huge_whitespace", blob(conf=CONF[:-2] + " " * 300_000 + "}\n", stat=GOOD_STAT), "info", ".", 0, "")
case("conf_array_not_object", blob(conf="[1, 2, 3]", stat=GOOD_STAT), "info", ".", 3, "must be a JSON object")
case("conf_missing_dtype", blob(conf=CONF.replace('  "dtype": "float32",\n', ""), stat=GOOD_STAT), "info", ".", 3, "missing key 'dtype'")
case("conf_missing_shape", blob(conf=CONF.replace('  "shape": [\n    3\n  ]\n', '  "x": 1\n'), stat=GOOD_STAT), "info", ".", 3, "unknown key 'x'")
case("conf_unknown_dtype", blob(conf=CONF.replace("float32", "float33"), stat=GOOD_STAT), "info", ".", 3, "unknown dtype 'float33'")
case("conf_quantized_dtype", blob(conf=CONF.replace("float32", "qint8"), stat=GOOD_STAT), "info", ".", 3, "quantized")
case("conf_dtype_is_number", blob(conf=CONF.replace('"float32"', "4"), stat=GOOD_STAT), "info", ".", 3, "'dtype' must be a string")
case("conf_negative_dim", blob(conf=CONF.replace("    3\n", "    -3\n"), stat=GOOD_STAT), "info", ".", 3, "dimension below 1")
case("conf_zero_dim", blob(conf=CONF.replace("    3\n", "    0\n"), stat=GOOD_STAT), "info", ".", 3, "dimension below 1")
case("conf_shape_overflows_64_bits", blob(conf=CONF.replace("    3\n", "    4294967296,\n    4294967296\n"), stat=GOOD_STAT), "info", ".", 3, "overflows")
case("conf_block_size_zero", blob(conf=CONF.replace('"block_size": 2', '"block_size": 0'), stat=GOOD_STAT), "info", ".", 3, "block_size must be at least 1")
case("conf_block_size_float", blob(conf=CONF.replace('"block_size": 2', '"block_size": 2.5'), stat=GOOD_STAT), "info", ".", 3, "'block_size' must be an integer")
case("conf_block_bytes_overflow", blob(conf=CONF.replace('"block_size": 2', '"block_size": 9223372036854775807'), stat=GOOD_STAT), "info", ".", 3, "overflows")
case("conf_wrong_class", blob(conf=CONF.replace("TensorBlob", "MyModel"), stat=GOOD_STAT), "info", ".", 3, "not TensorBlob")
case("conf_tensordb", blob(conf=CONF.replace("TensorBlob", "TensorDB"), stat=GOOD_STAT), "info", ".", 3, "TensorDB")
case("conf_is_directory", {".conf/keep": b"", ".stat": GOOD_STAT.encode(), B0: bytes(24), B1: bytes(24)}, "info", ".", 3, ".conf")
case("conf_missing", {".stat": GOOD_STAT.encode()}, "info", ".", 3, ".conf: missing")

# .stat
case("stat_missing", blob(), "info", ".", 3, ".stat: status file missing")
case("stat_empty", blob(stat=""), "info", ".", 3, ".stat: invalid JSON")
case("stat_truncated", blob(stat=GOOD_STAT[:20]), "info", ".", 3, ".stat: invalid JSON")
case("stat_not_utf8", blob(stat=b'{"len":3,"bds":["\xff"]}'), "info", ".", 3, ".stat: invalid JSON")
case("stat_deeply_nested", blob(stat='{"bds":' + "[" * 100000 + "]" * 100000 + "}"), "info", ".", 3, ".stat")
case("stat_negative_len", blob(stat='{"len":-1,"bds":[]}'), "info", ".", 3, "'len' is negative")
case("stat_len_string", blob(stat='{"len":"3","bds":[]}'), "info", ".", 3, "'len' must be an integer")
case("stat_len_huge", blob(stat='{"len":99999999999999999999,"bds":[]}'), "info", ".", 3, ".stat")
case("stat_too_few_blocks", blob(stat='{"len":5,"bds":["%s"]}' % B0), "info", ".", 3, "need 3 blocks of 2 but only 1 are listed")
case("stat_block_parent_path", blob(stat='{"len":1,"bds":["../x"]}'), "info", ".", 3, "not a plain file name")
case("stat_block_absolute_path", blob(stat='{"len":1,"bds":["/etc/passwd"]}'), "info", ".", 3, "not a plain file name")
case("stat_block_dotdot", blob(stat='{"len":1,"bds":[".."]}'), "info", ".", 3, "not a plain file name")
case("stat_block_empty_name", blob(stat='{"len":1,"bds":[""]}'), "info", ".", 3, "not a plain file name")
case("stat_block_duplicate", blob(stat='{"len":3,"bds":["%s","%s"]}' % (B0, B0)), "info", ".", 3, "listed twice")
case("stat_block_not_string", blob(stat='{"len":1,"bds":[7]}'), "info", ".", 3, "not a string")
case("stat_extra_key", blob(stat='{"len":0,"bds":[],"x":1}'), "info", ".", 3, "unknown key 'x'")
case("stat_names_conf", blob(stat='{"len":1,"bds":[".conf"]}'), "info", ".", 3, "not a plain file name")

# block files: found by verify, which reads every tensor
case("block_missing", blob(stat=GOOD_STAT, blocks={B0: 24}), "verify", ".", 3, B1 + ": block file listed in .stat is missing")
case("block_short", blob(stat=GOOD_STAT, blocks={B0: 24, B1: 7}), "verify", ".", 3, B1 + ": block file is 7 bytes, expected 24")
case("block_empty", blob(stat=GOOD_STAT, blocks={B0: 0, B1: 24}), "verify", ".", 3, B0 + ": block file is 0 bytes")
case("block_long", blob(stat=GOOD_STAT, blocks={B0: 24, B1: 4096}), "verify", ".", 0, "")
case("block_is_directory", {**blob(stat=GOOD_STAT, blocks={B0: 24}), B1 + "/keep": b""}, "verify", ".", 3, B1 + ": block file is not a regular file")
case("block_symlink_out", {**blob(stat=GOOD_STAT, blocks={B0: 24}), B1: ("symlink", "../../../etc/hostname")}, "verify", ".", 3, B1 + ": block file is a symbolic link")

# picomap datasets
def npy(arr):
    b = io.BytesIO(); np.save(b, arr); return b.getvalue()
def starts(values, dtype="<u8"):
    return npy(np.array(values, dtype=dtype))
PJ = {"trail_dim": [2], "hash": "0" * 32, "creation_time": "x", "dtype": "float32", "count": 2, "total_rows": 3}
def ds(json_obj=None, st=None, dat_rows=3, json_text=None):
    text = json_text if json_text is not None else json.dumps(json_obj or PJ, separators=(",", ":"))
    return {"d.json": text.encode(), "d.starts.npy": st if st is not None else starts([0, 1, 3]),
            "d.dat": bytes(dat_rows * 8)}
case("ragged_starts_not_monotonic", ds(st=starts([0, 2, 1])), "info", "d", 3, "d.starts.npy: entries 1 and 2 (2, 1) do not increase")
case("ragged_starts_empty_item", ds(st=starts([0, 0, 3])), "info", "d", 3, "do not increase")
case("ragged_starts_not_from_zero", ds(st=starts([1, 2, 3])), "info", "d", 3, "first entry is 1, not 0")
case("ragged_starts_wrong_dtype", ds(st=npy(np.array([0, 1, 3], "<f8"))), "info", "d", 3, "expected 8-byte little-endian integers")
case("ragged_starts_wrong_length", ds(st=starts([0, 1, 2, 3])), "info", "d", 3, "has 4 entries")
case("ragged_starts_2d", ds(st=npy(np.zeros((3, 1), "<u8"))), "info", "d", 3, "expected a 1-D array")
case("ragged_starts_header_lies", ds(st=starts([0, 1, 3])[:-8]), "info", "d", 3, "but its header promises")
case("ragged_starts_not_npy", ds(st=b"hello, this is not numpy data"), "info", "d", 3, "d.starts.npy: not a .npy file")
case("ragged_starts_past_total_rows", ds(st=starts([0, 1, 4])), "info", "d", 3, "last entry 4 disagrees")
case("ragged_dat_short", ds(dat_rows=2), "info", "d", 3, "d.dat: is 16 bytes but 3 rows of 8 bytes need 24")
case("ragged_dat_long", ds(dat_rows=4), "info", "d", 3, "d.dat: is 32 bytes")
case("ragged_json_count_disagrees", ds({**PJ, "count": 3}), "info", "d", 3, "has 3 entries but")
case("ragged_json_missing_key", ds(json_text='{"trail_dim":[2],"hash":"%s"}' % ("0" * 32)), "info", "d", 3, "missing key")
case("ragged_json_bad_hash", ds({**PJ, "hash": "XYZ"}), "info", "d", 3, "'hash' must be 32 lowercase hex digits")
case("ragged_json_negative_count", ds({**PJ, "count": -2}), "info", "d", 3, "'count' must be a non-negative integer")
case("ragged_json_unknown_dtype", ds({**PJ, "dtype": "float33"}), "info", "d", 3, "dtype 'float33'")
case("ragged_json_object_dtype", ds({**PJ, "dtype": "|O"}), "info", "d", 3, "object dtype")
case("ragged_json_truncated", ds(json_text=json.dumps(PJ)[:30]), "info", "d", 3, "d.json: invalid JSON")
case("ragged_json_not_utf8", ds(json_text='{"dtype":"\udcff"}'.encode("utf-8", "surrogateescape").decode("latin1")), "info", "d", 3, "d.json")
case("ragged_hash_mismatch", ds(), "verify", "d", 1, "does not match the stored")

# blobfs configs
def cfg(text): return {"c.yaml": text.encode() if isinstance(text, str) else text}
case("config_unknown_key", cfg("threads: 4\nnaming_wdith: 8\n"), "blobfs-config", "c.yaml", 2, "c.yaml:2: unknown option 'naming_wdith'")
case("config_wrong_type", cfg("threads: many\n"), "blobfs-config", "c.yaml", 2, "c.yaml:1: threads: expected an integer")
case("config_out_of_range", cfg("naming_width: 40\n"), "blobfs-config", "c.yaml", 2, "c.yaml:1: naming_width: 40 is out of range")
case("config_list_value", cfg("threads: [1, 2]\n"), "blobfs-config", "c.yaml", 2, "expected a single value")
case("config_not_a_map", cfg("- a\n- b\n"), "blobfs-config", "c.yaml", 2, "the config must be a map")
case("config_invalid_yaml", cfg("threads: [1\n"), "blobfs-config", "c.yaml", 2, "invalid YAML")
case("config_deeply_nested", cfg("threads: " + "[" * 100000 + "]" * 100000 + "\n"), "blobfs-config", "c.yaml", 2, "c.yaml")
case("config_not_utf8", cfg(b"threads: \xff\xfe\n"), "blobfs-config", "c.yaml", 2, "c.yaml")
case("config_bad_mode", cfg('file_mode: "0999"\n'), "blobfs-config", "c.yaml", 2, "expected an octal mode")

# names asked of a mount of conformance/tensorblob/f32_3blocks (10 tensors);
# "exit" is the errno stat(2) must fail with
def name(n): return {"name": n.encode()}
case("name_over_long", name("0" * 252 + ".bin" + "0"), "mount-name", "name", "ENAMETOOLONG", "File name too long")
case("name_leading_zeros", name("0000001.bin"), "mount-name", "name", "ENOENT", "No such file")
case("name_plus_sign", name("+00001.bin"), "mount-name", "name", "ENOENT", "No such file")
case("name_unpadded", name("1.bin"), "mount-name", "name", "ENOENT", "No such file")
case("name_upper_case_suffix", name("000001.BIN"), "mount-name", "name", "ENOENT", "No such file")
case("name_one_past_the_end", name("000010.bin"), "mount-name", "name", "ENOENT", "No such file")
case("name_range_one_past_the_end", name("000000-000011.bin"), "mount-name", "name", "ENOENT", "No such file")
case("name_range_reversed", name("000005-000004.npy"), "mount-name", "name", "ENOENT", "No such file")

# Special files in every position: nothing may block on them, and each is
# refused by name (a sidecar is optional: reported as damaged, not fatal).
for kind in ("fifo", "chardev", "socket"):
    what = {"fifo": "a FIFO", "chardev": "a character device", "socket": "a socket"}[kind]
    case(f"special_conf_{kind}", blob(stat=GOOD_STAT), "info", ".", 3, f".conf: not a regular file ({what})", [(".conf", kind)])
    case(f"special_stat_{kind}", blob(stat=GOOD_STAT), "info", ".", 3, f".stat: not a regular file ({what})", [(".stat", kind)])
    case(f"special_block_{kind}", blob(stat=GOOD_STAT), "verify", ".", 3, f"{B1}: block file is not a regular file ({what})", [(B1, kind)])
    case(f"special_block_{kind}_cat", blob(stat=GOOD_STAT), "cat", ".", 3, f"{B1}: block file is not a regular file ({what})", [(B1, kind)])
    case(f"special_sidecar_{kind}", blob(stat=GOOD_STAT), "info", ".", 0, "", [(".hashes.npy", kind)])
    case(f"special_ragged_json_{kind}", ds(), "info", "d", 3, f"d.json: not a regular file ({what})", [("d.json", kind)])
    case(f"special_ragged_dat_{kind}", ds(), "info", "d", 3, f"d.dat: not a regular file ({what})", [("d.dat", kind)])
    case(f"special_ragged_starts_{kind}", ds(), "info", "d", 3, f"d.starts.npy: not a regular file ({what})", [("d.starts.npy", kind)])
    case(f"special_ragged_sidecar_{kind}", ds(), "info", "d", 0, "", [("d.hashes.npy", kind)])
    case(f"special_config_{kind}", {}, "blobfs-config", "c.yaml", 2, f"c.yaml: cannot read the config file (not a regular file ({what}))", [("c.yaml", kind)])
    case(f"special_import_input_{kind}", {}, "import", "in.npy", 3, f"in.npy: not a regular file ({what})", [("in.npy", kind)])
case("special_config_dir", {"c.yaml/keep": b""}, "blobfs-config", "c.yaml", 2, "c.yaml: cannot read the config file (not a regular file (a directory))")
case("special_config_dev_zero", {}, "blobfs-config", "/dev/zero", 2, "/dev/zero: cannot read the config file (not a regular file (a character device))")
case("config_huge", cfg("# " + "x" * (1 << 20) + "\n"), "blobfs-config", "c.yaml", 2, "c.yaml: cannot read the config file (file is larger than 1048576 bytes)")
case("special_source_fifo", {}, "blobfs-source", "src", 3, "src: no such blob or ragged dataset", [("src", "fifo")])

# Sidecar damage: reported and ignored for reading; verify_on_read refuses to mount.
SIDE = {"len": 3, "bds": [B0, B1]}
for name, content in [("empty", b""), ("garbage", b"not numpy at all"), ("short", npy(np.zeros((4, 16), np.uint8))[:-5]),
                      ("wrong_shape", npy(np.zeros((4, 8), np.uint8)))]:
    files = blob(stat=GOOD_STAT, extra={".hashes.npy": content})
    case(f"sidecar_{name}", files, "info", ".", 0, "")
    case(f"sidecar_{name}_verify_on_read", files, "blobfs-source", ". -o verify_on_read=true", 3, "verify_on_read needs current per-item hashes, and they are damaged")
case("sidecar_missing_verify_on_read", blob(stat=GOOD_STAT), "blobfs-source", ". -o verify_on_read=true", 3, "verify_on_read needs current per-item hashes, and they are none recorded")

# Signals sent to a daemon serving conformance/tensorblob/f32_3blocks: each
# ends it cleanly (unmounted, exit 0) or is ignored (still serving).
for sig in ["HUP", "INT", "TERM", "QUIT", "ALRM", "VTALRM", "PROF", "IO", "PWR", "STKFLT", "XCPU", "RTMIN", "RTMIN+7",
            "RTMAX", "SEGV", "BUS", "ILL", "FPE", "ABRT", "TRAP", "SYS"]:
    case("signal_" + sig.replace("+", "_plus_"), {}, "signal", sig, "ends", "")
for sig in ["USR1", "USR2", "PIPE", "XFSZ", "CHLD", "URG", "WINCH", "CONT"]:
    case("signal_" + sig, {}, "signal", sig, "ignored", "")

# Limits: a blob of 32 sparse 64 MiB blocks (2 GiB) served under a small
# address space (mmap fails: reads fall back to pread), also with one cached
# block; and many blocks under a low descriptor limit with clone_fd.
case("limit_address_space", {}, "limit-as", "262144", 0, "")
case("limit_address_space_one_cached_block", {}, "limit-as", "262144 -o max_cached_blocks=1", 0, "")
# (soft 12: libfuse's clones alone would use it up; blobfs raises the soft
# limit to the hard one. 16/16: both low, the cache must live within them.)
case("limit_descriptors_soft_clone_fd", {}, "limit-nofile", "12 -o clone_fd=true,threads=8", 0, "")
case("limit_descriptors_hard_clone_fd", {}, "limit-nofile", "16/16 -o clone_fd=true,threads=8", 0, "")

shutil.rmtree(OUT, ignore_errors=True)
for name, files, run, path, code, message, special in cases:
    d = os.path.join(OUT, name)
    os.makedirs(d)
    for rel, content in files.items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        # "X/keep" makes X a directory (git keeps no empty ones).
        if isinstance(content, tuple):
            os.symlink(content[1], p)
        else:
            open(p, "wb").write(content)
    with open(os.path.join(d, "expect"), "w") as f:
        f.write(f"run: {run}\npath: {path}\nexit: {code}\nmessage: {message}\n")
        for target, kind in special:
            f.write(f"special: {target} {kind}\n")
print(f"{len(cases)} cases written to {OUT}")
