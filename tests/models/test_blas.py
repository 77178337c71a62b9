"""models.blas: the BLAS kernel chosen for the CPU, against faked CPUs and libraries,
and the libraries this test process really loaded."""
import pytest

from models import blas

AVX512 = set("fpu sse sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512cd".split())
AVX2 = set("fpu sse sse2 avx avx2 fma".split())


def library(kernel, exact=True, path="libopenblas.so.0"):
    return {"path": path, "version": "0.3.21", "kernel": kernel, "exact": exact}


def fake_probe(answers):
    """probe_fn whose libraries answer ``answers[coretype]`` (a list of libraries);
    records the core types asked for."""
    asked = []

    def probe_fn(coretype):
        asked.append(coretype)
        return answers[coretype]
    probe_fn.asked = asked
    return probe_fn


def test_cpu_level_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8581C\n"
                    "flags\t\t: %s\n\nprocessor\t: 1\nflags\t\t: fpu\n" % " ".join(sorted(AVX512)))
    cpu = blas.cpu(str(info))
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8581C"
    assert blas.cpu_level(cpu["flags"]) == "avx512"
    assert blas.cpu_level(AVX2) == "avx2"
    assert blas.cpu_level(AVX512 - {"avx512bw"}) == "avx2"  # Knights Landing-like: no BW/VL
    assert blas.cpu_level({"fpu", "sse2"}) == "sse"
    assert blas.cpu(str(tmp_path / "missing")) == {"model": "unknown CPU", "flags": set()}


@pytest.mark.parametrize("level,generic,expected", [
    ("avx512", "Prescott", "SkylakeX"),   # Emerald Rapids under Debian's 0.3.21
    ("avx512", "Barcelona", "SkylakeX"),  # Zen 5 under NumPy's 0.3.20
    ("avx2", "Prescott", "Haswell"),
    ("avx", "Core2", "SandyBridge")])
def test_generic_kernel_on_capable_cpu_is_replaced(level, generic, expected):
    probe = fake_probe({None: [library(generic)], "SkylakeX": [library("SkylakeX")],
                        "Haswell": [library("Haswell")],
                        "SandyBridge": [library("SandyBridge")]})
    result = blas.choose(level, None, probe)
    assert (result["coretype"], result["set_by"]) == (expected, "project")
    assert "warning" not in result


def test_one_core_type_must_suit_every_library():
    # Debian's own choice is fine, NumPy's is generic: forcing is needed for both
    probe = fake_probe({None: [library("Cooperlake"), library("Barcelona", path="numpy")],
                        "SkylakeX": [library("SkylakeX"), library("SkylakeX", path="numpy")]})
    assert blas.choose("avx512", None, probe)["coretype"] == "SkylakeX"


def test_a_wrong_kernel_is_never_chosen():
    # 0.3.20's Cooperlake DGEMM on Zen 5: fast, and wrong
    probe = fake_probe({None: [library("Cooperlake", exact=False)],
                        "SkylakeX": [library("SkylakeX", exact=False)],
                        "Haswell": [library("Haswell")]})
    result = blas.choose("avx512", None, probe)
    assert result["coretype"] == "Haswell" and probe.asked == [None, "SkylakeX", "Haswell"]


def test_the_libraries_own_good_choice_is_kept():
    probe = fake_probe({None: [library("SapphireRapids")]})  # a newer build's own name
    result = blas.choose("avx512", None, probe)
    assert (result["coretype"], result["set_by"], probe.asked) == (None, "library", [None])
    probe = fake_probe({None: [library("NewCoreOf2030")]})  # a name this list lacks
    assert blas.choose("avx2", None, probe)["set_by"] == "library"


def test_nothing_passes_warns_naming_the_kernel():
    probe = fake_probe({None: [library("Prescott")], "SkylakeX": [library("Prescott")],
                        "Haswell": [library("Prescott")]})
    result = blas.choose("avx512", None, probe)
    assert result["coretype"] is None
    assert "Prescott" in result["warning"] and "libopenblas.so.0" in result["warning"]


def test_the_users_core_type_is_kept_and_judged():
    probe = fake_probe({"Haswell": [library("Haswell")]})
    result = blas.choose("avx512", "Haswell", probe)
    assert (result["coretype"], result["set_by"]) == ("Haswell", "environment")
    assert "warning" not in result and probe.asked == ["Haswell"]
    result = blas.choose("avx512", "Prescott", fake_probe({"Prescott": [library("Prescott")]}))
    assert "Prescott" in result["warning"]
    result = blas.choose("avx2", "Zen", fake_probe({"Zen": [library("Zen", exact=False)]}))
    assert "wrong" in result["warning"]


def test_this_process_runs_no_generic_kernel():
    """The libraries this process loaded (NumPy's, SciPy's and Theano's OpenBLAS), asked
    directly: on a CPU with AVX2 or more, none runs a generic kernel or a wrong one."""
    import numpy as np  # noqa: F401  (loaded after models, as in every entry point)
    import scipy.linalg  # noqa: F401
    level = blas.cpu_level(blas.cpu()["flags"])
    found = blas.probe_here(blas.libraries())
    assert found, "no OpenBLAS found in this process"
    for lib in found:
        assert lib["exact"], lib
        if level in ("avx2", "avx512"):
            assert blas.KERNEL_LEVEL.get(lib["kernel"]) != "sse", (lib, level)
