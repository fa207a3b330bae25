/*
 * Staging a batch of small local-to-local copies in C, on a few threads.
 *
 * Why: a profile of the initial sync of 10,000 small files between two
 * folders (docs/benchmarks.md, "W1: staging in C") put ~50 us of interpreter
 * work on each file's stage around ~12 system calls, all on one core while
 * the other idled, and most of the kernel's time inside the temp file's
 * create. Here each file is the same sequence the Python path runs
 * (engine/localcopy.py, stage_one), except that the folder is checked (one
 * lstat against the descriptor's identity) once before and once after each
 * folder's run of files rather than before each file; the source opened by
 * its path without following a final link, the temp created exclusively
 * beside its target, the bytes copied by the kernel (copy_file_range, or
 * read/write where the file systems cannot), the source's descriptor compared with the scan (size,
 * mtime, inode, and the byte count: a file that changed while it was read
 * is refused), the mtime set, the temp's status taken. The GIL is released
 * for the whole batch; threads take one folder's run of files at a time, so
 * two creates rarely wait on the same folder's lock.
 *
 * Built by the project's install (hatch_build.py); without it the Python
 * twin runs (syncagent/native/stage.py says which).
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STAGE_VERSION 3
#define MAX_THREADS 8
#define COPY_BUFFER (256 * 1024)

/* A job's outcome (the first field of its result tuple). */
enum { ST_OK = 0, ST_CHANGED = 1, ST_STALE = 2, ST_ERROR = 3, ST_TAKEN = 4 };

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

typedef struct {
    const char *source;    /* absolute path of the local file (borrowed from a bytes object) */
    const char *folder;    /* absolute path of the target's folder, checked by lstat; NULL: the root */
    const char *tmp;       /* the temp's name in that folder */
    int dir_fd;
    dev_t dir_dev;
    ino_t dir_ino;
    long long size, mtime_ns;
    unsigned long long ino;
    int set_mtime;
    /* out */
    int status, err;
    long long out_size, out_mtime_ns;
    unsigned long long out_ino;
} job_t;

/* A batch of jobs (copies or renames) parsed from a Python list and run on a
 * few threads, each thread taking one folder's run of jobs at a time (two
 * creates or renames in one folder wait on its lock). */
typedef struct {
    char *jobs;            /* job_t[] or rename_t[], `stride` bytes apart */
    size_t stride, n;
    size_t *starts;        /* chunk i is jobs [starts[i] .. starts[i + 1]) */
    size_t nchunks;
    size_t next;           /* the next chunk to take (atomic) */
    PyObject **keep;       /* 3 per job: the objects its strings point into */
    size_t parsed;
    int plain;             /* renames: set once RENAME_NOREPLACE is refused */
} pool_t;

typedef int (*parse_fn)(PyObject *item, void *job, PyObject **keep);

/* Parse every item of `list` into the pool's jobs; 0, or -1 with an exception set.
 * pool_free() releases what was parsed either way. */
static int pool_parse(pool_t *pool, PyObject *list, size_t stride, parse_fn parse) {
    size_t n = (size_t)PyList_GET_SIZE(list);
    *pool = (pool_t){0};
    pool->stride = stride;
    pool->n = n;
    pool->jobs = calloc(n + 1, stride);
    pool->starts = calloc(n + 2, sizeof(size_t));
    pool->keep = calloc(3 * n + 1, sizeof(PyObject *));
    if (pool->jobs == NULL || pool->starts == NULL || pool->keep == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (; pool->parsed < n; pool->parsed++) {
        if (parse(PyList_GET_ITEM(list, (Py_ssize_t)pool->parsed), pool->jobs + pool->parsed * stride,
                  &pool->keep[3 * pool->parsed]) != 0)
            return -1;
    }
    return 0;
}

static void pool_free(pool_t *pool) {
    if (pool->keep != NULL) {
        for (size_t i = 0; i < 3 * pool->parsed; i++)
            Py_XDECREF(pool->keep[i]);
    }
    free(pool->keep);
    free(pool->starts);
    free(pool->jobs);
}

/* Chunks: each folder's run of jobs (the int at `fd_offset` of each job is
 * its folder's descriptor), a long run cut so that every thread gets work. */
static void pool_chunk(pool_t *pool, size_t fd_offset, size_t threads) {
    size_t limit = pool->n / (threads * 4);
    if (limit < 16)
        limit = 16;
    size_t nchunks = 0;
    int previous = -1;
    for (size_t i = 0; i < pool->n; i++) {
        int fd = *(const int *)(pool->jobs + i * pool->stride + fd_offset);
        if (i == 0 || fd != previous || i - pool->starts[nchunks - 1] >= limit)
            pool->starts[nchunks++] = i;
        previous = fd;
    }
    pool->starts[nchunks] = pool->n;
    pool->nchunks = nchunks;
}

/* The next chunk's jobs [*first, *last); 0 when none is left. */
static int pool_take(pool_t *pool, size_t *first, size_t *last) {
    size_t c = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
    if (c >= pool->nchunks)
        return 0;
    *first = pool->starts[c];
    *last = pool->starts[c + 1];
    return 1;
}

/* Chunk the jobs and run `work` on up to `threads` threads, the calling one
 * among them, with the GIL released. */
static void pool_run(pool_t *pool, size_t fd_offset, int threads, void *(*work)(void *)) {
    if (threads < 1)
        threads = 1;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    pool_chunk(pool, fd_offset, (size_t)threads);
    if ((size_t)threads > pool->nchunks)
        threads = (int)(pool->nchunks ? pool->nchunks : 1);
    Py_BEGIN_ALLOW_THREADS
    pthread_t ids[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&ids[started], NULL, work, pool) != 0)
            break;   /* fewer threads: the work is the same */
        started++;
    }
    work(pool);
    for (int t = 0; t < started; t++)
        pthread_join(ids[t], NULL);
    Py_END_ALLOW_THREADS
}

static long long mtime_of(const struct stat *st) {
    return (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

/* Copy up to `limit` bytes; -1 with errno on a failure. */
static long long copy_bytes(int in, int out, long long limit, char **buf, int *kernel) {
    long long copied = 0;
    while (copied < limit) {
        ssize_t n;
        if (*kernel) {
            n = copy_file_range(in, NULL, out, NULL, (size_t)(limit - copied), 0);
            if (n < 0 && copied == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                                         errno == EOPNOTSUPP || errno == EPERM)) {
                *kernel = 0;   /* these two file systems cannot: read and write (offsets are untouched) */
                continue;
            }
        } else {
            if (*buf == NULL && (*buf = malloc(COPY_BUFFER)) == NULL) {
                errno = ENOMEM;
                return -1;
            }
            long long want = limit - copied;
            n = read(in, *buf, want < COPY_BUFFER ? (size_t)want : COPY_BUFFER);
            for (ssize_t done = 0; n > 0 && done < n;) {
                ssize_t w = write(out, *buf + done, (size_t)(n - done));
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    return -1;
                }
                done += w;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        copied += n;
        if (copied == limit - 1)
            break;   /* the size the scan saw: no call more to read the end (the caller's fstat sees a growth) */
    }
    return copied;
}

/* Whether `folder` (NULL: the root, never checked) still is the folder whose descriptor the jobs use. */
static int same_folder(const char *folder, dev_t dev, ino_t ino) {
    struct stat st;
    return folder == NULL ||
           (lstat(folder, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == dev && st.st_ino == ino);
}

static void run_job(job_t *j, char **buf, int *kernel) {
    struct stat st;
    int in = open(j->source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) {
        j->status = ST_ERROR;
        j->err = errno;
        return;
    }
    int out = openat(j->dir_fd, j->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        j->status = ST_ERROR;
        j->err = errno;
        close(in);
        return;
    }
    /* size + 1: a file that grew shows in the count */
    long long copied = copy_bytes(in, out, j->size + 1, buf, kernel);
    if (copied < 0 || fstat(in, &st) != 0) {
        j->status = ST_ERROR;
        j->err = errno;
    } else if (copied != j->size || st.st_size != j->size || mtime_of(&st) != j->mtime_ns ||
               (unsigned long long)st.st_ino != j->ino) {
        j->status = ST_CHANGED;
    } else {
        struct timespec times[2];
        times[0].tv_sec = times[1].tv_sec = (time_t)(j->mtime_ns / 1000000000LL);
        times[0].tv_nsec = times[1].tv_nsec = (long)(j->mtime_ns % 1000000000LL);
        if ((j->set_mtime && futimens(out, times) != 0) || fstat(out, &st) != 0) {
            j->status = ST_ERROR;
            j->err = errno;
        } else {
            j->status = ST_OK;
            j->out_size = st.st_size;
            j->out_mtime_ns = mtime_of(&st);
            j->out_ino = (unsigned long long)st.st_ino;
        }
    }
    close(in);
    close(out);
    if (j->status != ST_OK)
        unlinkat(j->dir_fd, j->tmp, 0);
}

static void *worker(void *arg) {
    pool_t *pool = arg;
    char *buf = NULL;
    int kernel = 1;
    size_t first, last;
    while (pool_take(pool, &first, &last)) {
        /* A chunk is one folder's run: the folder is checked once before it
         * and once after it, instead of before each file (two lstats of a
         * whole path per file were ~4 % of the batch). A folder replaced
         * before the chunk ends is seen by the second check, and the temps
         * made in the old one are taken back. */
        job_t *head = (job_t *)(pool->jobs + first * pool->stride);
        int same = same_folder(head->folder, head->dir_dev, head->dir_ino);
        for (size_t i = first; i < last; i++) {
            job_t *j = (job_t *)(pool->jobs + i * pool->stride);
            if (same)
                run_job(j, &buf, &kernel);
            else
                j->status = ST_STALE;   /* not the folder that was opened: Python walks to it again */
        }
        if (same && !same_folder(head->folder, head->dir_dev, head->dir_ino)) {
            for (size_t i = first; i < last; i++) {
                job_t *j = (job_t *)(pool->jobs + i * pool->stride);
                if (j->status == ST_OK)
                    unlinkat(j->dir_fd, j->tmp, 0);
                if (j->status == ST_OK || j->status == ST_CHANGED)
                    j->status = ST_STALE;
            }
        }
    }
    free(buf);
    return NULL;
}

static int parse_job(PyObject *item, void *job, PyObject **keep) {
    job_t *j = job;
    PyObject *source, *folder, *tmp;
    int set_mtime;
    unsigned long long dev, dino;
    /* the source and the temp: str (encoded here as os.fsencode does) or bytes; new references */
    if (!PyArg_ParseTuple(item, "O&OiKKO&LLKp:job", PyUnicode_FSConverter, &source, &folder, &j->dir_fd, &dev,
                          &dino, PyUnicode_FSConverter, &tmp, &j->size, &j->mtime_ns, &j->ino, &set_mtime))
        return -1;
    if (folder != Py_None && !PyBytes_Check(folder)) {
        PyErr_SetString(PyExc_TypeError, "job: the folder is bytes or None");
        Py_DECREF(source);
        Py_DECREF(tmp);
        return -1;
    }
    j->source = PyBytes_AS_STRING(source);
    j->folder = folder == Py_None ? NULL : PyBytes_AS_STRING(folder);
    j->tmp = PyBytes_AS_STRING(tmp);
    j->dir_dev = (dev_t)dev;
    j->dir_ino = (ino_t)dino;
    j->set_mtime = set_mtime;
    j->status = ST_ERROR;
    j->err = EINVAL;
    keep[0] = source;
    keep[1] = folder;
    keep[2] = tmp;
    Py_INCREF(folder);
    return 0;
}

static PyObject *results_of(job_t *jobs, size_t n) {
    PyObject *out = PyList_New((Py_ssize_t)n);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        job_t *j = &jobs[i];
        PyObject *r = j->status == ST_OK
            ? Py_BuildValue("(iLLK)", ST_OK, j->out_size, j->out_mtime_ns, j->out_ino)
            : Py_BuildValue("(iiii)", j->status, j->err, 0, 0);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, r);
    }
    return out;
}

static PyObject *stage_copies(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *list, *out = NULL;
    int threads;
    pool_t pool;
    if (!PyArg_ParseTuple(args, "O!i:stage_copies", &PyList_Type, &list, &threads))
        return NULL;
    if (pool_parse(&pool, list, sizeof(job_t), parse_job) == 0) {
        pool_run(&pool, offsetof(job_t, dir_fd), threads, worker);
        out = results_of((job_t *)pool.jobs, pool.n);
    }
    pool_free(&pool);
    return out;
}

/* ---- committing: a batch of staged temps renamed onto their names ----------
 *
 * Why: after the copies, each file's commit in Python (the folder lent and
 * checked, the name looked up, the rename, the bookkeeping around them) was
 * ~30 us of interpreter work on one core around two system calls. Here each
 * rename is what LocalStaged.commit does for a new file: the folder checked
 * by one lstat against the descriptor's identity (once per folder's run of
 * renames), then the temp renamed onto
 * its name only if that name is still free (renameat2 RENAME_NOREPLACE: the
 * check and the rename are one step, where the Python path looks first).
 * A file system without RENAME_NOREPLACE gets that look (faccessat) and a
 * plain rename, as the Python path does.
 */
typedef struct {
    const char *folder;    /* absolute path of the folder, checked by lstat; NULL: the root */
    const char *tmp, *name;
    int dir_fd;
    dev_t dir_dev;
    ino_t dir_ino;
    int noreplace;         /* 1: the name must be free (the engine expects no file there) */
    int status, err;
} rename_t;

static int rename_noreplace(int dir_fd, const char *tmp, const char *name) {
    return (int)syscall(SYS_renameat2, dir_fd, tmp, dir_fd, name, RENAME_NOREPLACE);
}

static void run_rename(rename_t *j, int *plain) {
    if (j->noreplace && !__atomic_load_n(plain, __ATOMIC_RELAXED)) {
        if (rename_noreplace(j->dir_fd, j->tmp, j->name) == 0) {
            j->status = ST_OK;
            return;
        }
        if (errno == EEXIST) {
            j->status = ST_TAKEN;
            return;
        }
        if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
            j->status = ST_ERROR;
            j->err = errno;
            return;
        }
        __atomic_store_n(plain, 1, __ATOMIC_RELAXED);
    }
    if (j->noreplace && faccessat(j->dir_fd, j->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        j->status = ST_TAKEN;
        return;
    }
    if (renameat(j->dir_fd, j->tmp, j->dir_fd, j->name) == 0) {
        j->status = ST_OK;
    } else {
        j->status = ST_ERROR;
        j->err = errno;
    }
}

static void *rename_worker(void *arg) {
    pool_t *pool = arg;
    size_t first, last;
    while (pool_take(pool, &first, &last)) {
        /* one folder's run: its folder checked once, before its renames (as the copies' chunks) */
        rename_t *head = (rename_t *)(pool->jobs + first * pool->stride);
        int same = same_folder(head->folder, head->dir_dev, head->dir_ino);
        for (size_t i = first; i < last; i++) {
            rename_t *j = (rename_t *)(pool->jobs + i * pool->stride);
            if (same)
                run_rename(j, &pool->plain);
            else
                j->status = ST_STALE;   /* not the folder that was opened: Python walks to it again */
        }
    }
    return NULL;
}

static int parse_rename(PyObject *item, void *job, PyObject **keep) {
    rename_t *j = job;
    PyObject *folder, *tmp, *name;
    unsigned long long dev, dino;
    int noreplace;
    /* the temp and the name: str (encoded here as os.fsencode does) or bytes; new references */
    if (!PyArg_ParseTuple(item, "OiKKO&O&p:rename", &folder, &j->dir_fd, &dev, &dino, PyUnicode_FSConverter, &tmp,
                          PyUnicode_FSConverter, &name, &noreplace))
        return -1;
    if (folder != Py_None && !PyBytes_Check(folder)) {
        PyErr_SetString(PyExc_TypeError, "rename: the folder is bytes or None");
        Py_DECREF(tmp);
        Py_DECREF(name);
        return -1;
    }
    j->folder = folder == Py_None ? NULL : PyBytes_AS_STRING(folder);
    j->tmp = PyBytes_AS_STRING(tmp);
    j->name = PyBytes_AS_STRING(name);
    j->dir_dev = (dev_t)dev;
    j->dir_ino = (ino_t)dino;
    j->noreplace = noreplace;
    j->status = ST_ERROR;
    j->err = EINVAL;
    keep[0] = folder;
    keep[1] = tmp;
    keep[2] = name;
    Py_INCREF(folder);
    return 0;
}

static PyObject *commit_renames(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *list, *out = NULL;
    int threads;
    pool_t pool;
    if (!PyArg_ParseTuple(args, "O!i:commit_renames", &PyList_Type, &list, &threads))
        return NULL;
    if (pool_parse(&pool, list, sizeof(rename_t), parse_rename) == 0) {
        pool_run(&pool, offsetof(rename_t, dir_fd), threads, rename_worker);
        out = PyList_New((Py_ssize_t)pool.n);
    }
    for (size_t i = 0; out != NULL && i < pool.n; i++) {
        rename_t *j = (rename_t *)(pool.jobs + i * pool.stride);
        /* the status, or -errno for an error: small ints are shared objects, nothing allocated per file */
        PyObject *r = PyLong_FromLong(j->status == ST_ERROR ? -(long)j->err : (long)j->status);
        if (r == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, r);
    }
    pool_free(&pool);
    return out;
}

/* syncfs(fd) -> 0 or errno, the GIL released: the flush of a batch without loading ctypes for it. */
static PyObject *syncfs_fd(PyObject *self, PyObject *args) {
    (void)self;
    int fd, rc;
    if (!PyArg_ParseTuple(args, "i:syncfs", &fd))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = syncfs(fd) == 0 ? 0 : errno;
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyMethodDef methods[] = {
    {"syncfs", syncfs_fd, METH_VARARGS, "syncfs(fd) -> 0 or errno"},
    {"stage_copies", stage_copies, METH_VARARGS,
     "stage_copies([(source, folder|None, dir_fd, dir_dev, dir_ino, tmp, size, mtime_ns, ino, set_mtime)] (source and tmp: str or bytes), "
     "threads) -> [(status, size|errno, mtime_ns, ino)]"},
    {"commit_renames", commit_renames, METH_VARARGS,
     "commit_renames([(folder|None, dir_fd, dir_dev, dir_ino, tmp, name, noreplace)], threads) -> [status or -errno]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stage", NULL, -1, methods};

PyMODINIT_FUNC PyInit__stage(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "VERSION", STAGE_VERSION) != 0 ||
        PyModule_AddIntConstant(m, "OK", ST_OK) != 0 || PyModule_AddIntConstant(m, "CHANGED", ST_CHANGED) != 0 ||
        PyModule_AddIntConstant(m, "STALE", ST_STALE) != 0 || PyModule_AddIntConstant(m, "ERROR", ST_ERROR) != 0 ||
        PyModule_AddIntConstant(m, "TAKEN", ST_TAKEN) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
