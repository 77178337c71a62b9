/* A stand-in for the CUDA driver and cuBLAS, and a recording wrapper around the
 * real NVRTC, for tools/cuda_compile.py (no GPU, no driver).
 *
 * One shared object, linked three times as libcuda.so, libcublas.so and
 * libnvrtc.so: libgpuarray dlopens those names, so with this folder first on
 * LD_LIBRARY_PATH pygpu opens a "cuda" context on an sm_90 device that does not
 * exist. "Device" memory is host memory (copies and memsets are done), kernel
 * launches and cuBLAS calls do nothing. The nvrtc* functions forward to the
 * real NVRTC named by $DRT_NVRTC and record what libgpuarray hands them: the
 * program source, its headers, the options, the result, the log and the PTX;
 * cuLinkAddData records which PTX reached the "driver". drt_* read the records.
 * Nothing here computes: it only lets libgpuarray compile every kernel it would.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long CUdeviceptr;
typedef int CUresult;
#define OK 0
#define NOT_SUPPORTED 801

/* ---------------------------------------------------------------- records */
typedef struct {
  char *src, *log, *ptx;
  int nheaders, nopts, result, linked;
  char **hnames, **hsrcs, **opts;
  void *prog;
} record;

static record *recs;
static int nrecs, caprecs;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static record *find(void *prog) {
  for (int i = nrecs - 1; i >= 0; i--)
    if (recs[i].prog == prog) return &recs[i];
  return NULL;
}

int drt_count(void) { return nrecs; }
const char *drt_src(int i) { return recs[i].src; }
const char *drt_log(int i) { return recs[i].log; }
const char *drt_ptx(int i) { return recs[i].ptx; }
int drt_result(int i) { return recs[i].result; }
int drt_linked(int i) { return recs[i].linked; }
int drt_nheaders(int i) { return recs[i].nheaders; }
const char *drt_header_name(int i, int j) { return recs[i].hnames[j]; }
const char *drt_header_src(int i, int j) { return recs[i].hsrcs[j]; }
int drt_nopts(int i) { return recs[i].nopts; }
const char *drt_opt(int i, int j) { return recs[i].opts[j]; }

/* ---------------------------------------------------------------- NVRTC */
typedef int nvrtcResult;
typedef void *nvrtcProgram;
static void *real;

static void *sym(const char *name) {
  if (real == NULL) {
    const char *path = getenv("DRT_NVRTC");
    real = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (real == NULL) {
      fprintf(stderr, "cuda_stub: cannot load the real NVRTC ($DRT_NVRTC=%s): %s\n",
              path ? path : "(unset)", dlerror());
      abort();
    }
  }
  return dlsym(real, name);
}

#define FORWARD(name, ...) ((nvrtcResult(*)())sym(#name))(__VA_ARGS__)

nvrtcResult nvrtcVersion(int *major, int *minor) { return FORWARD(nvrtcVersion, major, minor); }

const char *nvrtcGetErrorString(nvrtcResult r) {
  return ((const char *(*)(nvrtcResult))sym("nvrtcGetErrorString"))(r);
}

nvrtcResult nvrtcCreateProgram(nvrtcProgram *prog, const char *src, const char *name,
                               int nh, const char *const *hsrc, const char *const *hname) {
  nvrtcResult r = FORWARD(nvrtcCreateProgram, prog, src, name, nh, hsrc, hname);
  if (nrecs == caprecs) {
    caprecs = caprecs ? 2 * caprecs : 256;
    recs = realloc(recs, caprecs * sizeof(record));
  }
  record *c = &recs[nrecs++];
  memset(c, 0, sizeof(*c));
  c->prog = r == 0 ? *prog : NULL;
  c->src = dup_or_null(src);
  c->result = r == 0 ? -1 : r; /* -1: not compiled (yet) */
  c->nheaders = nh;
  c->hnames = calloc(nh + 1, sizeof(char *));
  c->hsrcs = calloc(nh + 1, sizeof(char *));
  for (int j = 0; j < nh; j++) {
    c->hnames[j] = dup_or_null(hname ? hname[j] : NULL);
    c->hsrcs[j] = dup_or_null(hsrc[j]);
  }
  return r;
}

nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int nopt, const char *const *opts) {
  nvrtcResult r = FORWARD(nvrtcCompileProgram, prog, nopt, opts);
  record *c = find(prog);
  if (c) {
    c->result = r;
    c->nopts = nopt;
    c->opts = calloc(nopt + 1, sizeof(char *));
    for (int j = 0; j < nopt; j++) c->opts[j] = dup_or_null(opts[j]);
    size_t n = 0;
    if (FORWARD(nvrtcGetProgramLogSize, prog, &n) == 0 && n > 0) {
      c->log = calloc(n + 1, 1);
      FORWARD(nvrtcGetProgramLog, prog, c->log);
    }
  }
  return r;
}

nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char *ptx) {
  nvrtcResult r = FORWARD(nvrtcGetPTX, prog, ptx);
  record *c = find(prog);
  if (c && r == 0) {
    free(c->ptx);
    c->ptx = strdup(ptx);
  }
  return r;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog) {
  record *c = find(*prog);
  if (c) c->prog = NULL;
  return FORWARD(nvrtcDestroyProgram, prog);
}
nvrtcResult nvrtcGetPTXSize(nvrtcProgram p, size_t *n) { return FORWARD(nvrtcGetPTXSize, p, n); }
nvrtcResult nvrtcGetProgramLog(nvrtcProgram p, char *l) {
  return FORWARD(nvrtcGetProgramLog, p, l);
}
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram p, size_t *n) {
  return FORWARD(nvrtcGetProgramLogSize, p, n);
}

/* ---------------------------------------------------------------- driver */
static int token; /* the address of a few things that only need to be non-NULL */
#define HANDLE ((void *)&token)

CUresult cuInit(int flags) { (void)flags; return OK; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return OK; }
CUresult cuGetErrorName(CUresult e, const char **s) { (void)e; *s = "CUDA_STUB_ERROR"; return OK; }
CUresult cuGetErrorString(CUresult e, const char **s) {
  *s = e == NOT_SUPPORTED ? "not supported by the stand-in driver" : "stand-in driver error";
  return OK;
}
CUresult cuDeviceGet(int *d, int ordinal) { *d = 0; return ordinal == 0 ? OK : 101; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return OK; }
CUresult cuDeviceGetName(char *name, int len, int dev) {
  (void)dev; snprintf(name, len, "stand-in sm_90 (no GPU: tools/cuda_stub.c)"); return OK;
}
CUresult cuDeviceGetPCIBusId(char *id, int len, int dev) {
  (void)dev; snprintf(id, len, "0000:00:00.0"); return OK;
}
CUresult cuDeviceTotalMem_v2(size_t *b, int dev) { (void)dev; *b = 80ULL << 30; return OK; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
  (void)dev;
  switch (attr) {            /* an H100's figures (CUdevice_attribute numbers) */
  case 1: *v = 1024; break;  /* MAX_THREADS_PER_BLOCK */
  case 2: case 3: *v = 1024; break;  /* MAX_BLOCK_DIM_X, Y */
  case 4: *v = 64; break;    /* MAX_BLOCK_DIM_Z */
  case 5: *v = 2147483647; break;  /* MAX_GRID_DIM_X */
  case 6: case 7: *v = 65535; break;
  case 8: *v = 49152; break; /* MAX_SHARED_MEMORY_PER_BLOCK */
  case 10: *v = 32; break;   /* WARP_SIZE */
  case 12: *v = 65536; break;
  case 16: *v = 132; break;  /* MULTIPROCESSOR_COUNT */
  case 41: *v = 1; break;    /* UNIFIED_ADDRESSING */
  case 75: *v = 9; break;    /* COMPUTE_CAPABILITY_MAJOR */
  case 76: *v = 0; break;    /* COMPUTE_CAPABILITY_MINOR */
  default: *v = 0;
  }
  return OK;
}
CUresult cuDevicePrimaryCtxGetState(int dev, unsigned *flags, int *active) {
  (void)dev; *flags = 0; *active = 0; return OK;
}
CUresult cuDevicePrimaryCtxSetFlags(int dev, unsigned flags) { (void)dev; (void)flags; return OK; }
CUresult cuDevicePrimaryCtxRelease(int dev) { (void)dev; return OK; }
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; *ctx = HANDLE; return OK; }
CUresult cuCtxGetDevice(int *d) { *d = 0; return OK; }
CUresult cuCtxPushCurrent_v2(void *ctx) { (void)ctx; return OK; }
CUresult cuCtxPopCurrent_v2(void **ctx) { if (ctx) *ctx = HANDLE; return OK; }
CUresult cuCtxSynchronize(void) { return OK; }

static void note_linked(const char *ptx) {
  for (int i = nrecs - 1; i >= 0; i--)
    if (recs[i].ptx && strcmp(recs[i].ptx, ptx) == 0) { recs[i].linked = 1; return; }
}

typedef struct { char *data; size_t size; } link_state;
CUresult cuLinkCreate(unsigned n, void *o, void **v, void **st) {
  (void)n; (void)o; (void)v; *st = calloc(1, sizeof(link_state)); return OK;
}
CUresult cuLinkCreate_v2(unsigned n, void *o, void **v, void **st) {
  return cuLinkCreate(n, o, v, st);
}
CUresult cuLinkAddData(void *st, int type, void *data, size_t size, const char *name,
                       unsigned n, void *o, void **v) {
  (void)type; (void)name; (void)n; (void)o; (void)v;
  link_state *s = st;
  free(s->data);
  s->data = calloc(size + 1, 1);
  memcpy(s->data, data, size);
  s->size = size;
  note_linked(s->data);
  return OK;
}
CUresult cuLinkAddData_v2(void *st, int type, void *data, size_t size, const char *name,
                          unsigned n, void *o, void **v) {
  return cuLinkAddData(st, type, data, size, name, n, o, v);
}
CUresult cuLinkComplete(void *st, void **out, size_t *size) {
  link_state *s = st; *out = s->data; *size = s->size; return OK;
}
CUresult cuLinkDestroy(void *st) { link_state *s = st; free(s->data); free(s); return OK; }
CUresult cuModuleLoadData(void **m, const void *image) { (void)image; *m = HANDLE; return OK; }
CUresult cuModuleLoadDataEx(void **m, const void *image, unsigned n, void *o, void **v) {
  (void)n; (void)o; (void)v; return cuModuleLoadData(m, image);
}
CUresult cuModuleUnload(void *m) { (void)m; return OK; }
CUresult cuModuleGetFunction(void **f, void *m, const char *name) {
  (void)m; (void)name; *f = HANDLE; return OK;
}
CUresult cuFuncGetAttribute(int *v, int attr, void *f) {
  (void)f; *v = attr == 0 ? 1024 : 0; return OK;  /* MAX_THREADS_PER_BLOCK */
}
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void *stream, void **params, void **extra) {
  (void)f; (void)gx; (void)gy; (void)gz; (void)bx; (void)by; (void)bz; (void)shared;
  (void)stream; (void)params; (void)extra;
  return OK;  /* nothing runs */
}

CUresult cuMemGetInfo_v2(size_t *free_, size_t *total) {
  *free_ = 80ULL << 30; *total = 80ULL << 30; return OK;
}
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  void *m = calloc(n ? n : 1, 1);
  *p = (CUdeviceptr)(uintptr_t)m;
  return m ? OK : 2;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)(uintptr_t)p); return OK; }
CUresult cuMemAllocHost_v2(void **p, size_t n) { *p = calloc(n ? n : 1, 1); return *p ? OK : 2; }
CUresult cuMemFreeHost(void *p) { free(p); return OK; }
#define PTR(x) ((void *)(uintptr_t)(x))
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, void *st) {
  (void)st; memmove(PTR(d), s, n); return OK;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) {
  memmove(PTR(d), s, n); return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, void *st) {
  (void)st; memmove(d, PTR(s), n); return OK;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void *st) {
  (void)st; memmove(PTR(d), PTR(s), n); return OK;
}
CUresult cuMemcpyPeerAsync(CUdeviceptr d, void *dc, CUdeviceptr s, void *sc, size_t n, void *st) {
  (void)dc; (void)sc; (void)st; memmove(PTR(d), PTR(s), n); return OK;
}
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char c, size_t n, void *st) {
  (void)st; memset(PTR(d), c, n); return OK;
}

CUresult cuEventCreate(void **e, unsigned flags) { (void)flags; *e = HANDLE; return OK; }
CUresult cuEventRecord(void *e, void *s) { (void)e; (void)s; return OK; }
CUresult cuEventSynchronize(void *e) { (void)e; return OK; }
CUresult cuEventDestroy_v2(void *e) { (void)e; return OK; }
CUresult cuStreamCreate(void **s, unsigned flags) { (void)flags; *s = HANDLE; return OK; }
CUresult cuStreamWaitEvent(void *s, void *e, unsigned flags) {
  (void)s; (void)e; (void)flags; return OK;
}
CUresult cuStreamSynchronize(void *s) { (void)s; return OK; }
CUresult cuStreamDestroy_v2(void *s) { (void)s; return OK; }
CUresult cuIpcGetMemHandle(void *h, CUdeviceptr p) { (void)h; (void)p; return NOT_SUPPORTED; }
CUresult cuIpcOpenMemHandle(CUdeviceptr *p, char h[64], unsigned f) {
  (void)p; (void)h; (void)f; return NOT_SUPPORTED;
}
CUresult cuIpcCloseMemHandle(CUdeviceptr p) { (void)p; return NOT_SUPPORTED; }

/* ---------------------------------------------------------------- cuBLAS */
/* Every entry point libgpuarray 0.7.6 resolves; all succeed and do nothing. */
int cublasCreate_v2(void **h) { *h = HANDLE; return 0; }
int cublasGetPointerMode_v2(void *h, int *mode) { (void)h; *mode = 0; return 0; }
int cublasGetProperty(int prop, int *v) { *v = prop == 0 ? 13 : 0; return 0; }
#define NOOP(name) int name(void) { return 0; }
NOOP(cublasDestroy_v2) NOOP(cublasSetStream_v2) NOOP(cublasSetPointerMode_v2)
NOOP(cublasSetAtomicsMode) NOOP(cublasSdot_v2) NOOP(cublasDdot_v2) NOOP(cublasSgemm_v2)
NOOP(cublasDgemm_v2) NOOP(cublasSgemv_v2) NOOP(cublasDgemv_v2) NOOP(cublasSger_v2)
NOOP(cublasDger_v2) NOOP(cublasSgemmEx) NOOP(cublasGemmEx) NOOP(cublasSgemmBatched)
NOOP(cublasDgemmBatched) NOOP(cublasHgemmStridedBatched) NOOP(cublasSgemmStridedBatched)
NOOP(cublasDgemmStridedBatched)
