/*
 * The two per-path loops of a no-op sync, in C: reading one folder (its
 * entries, an lstat per file, sorted) and the three-way merge of the local
 * walk, the remote listing and the base (engine/merge.py).
 *
 * Why: profiles of a no-op over 100,000 files (docs/benchmarks.md) put ~7 us
 * of interpreter work on every path for each side, against ~2 us of system
 * calls. These functions do exactly what their Python twins do
 * (scan._read_folder, merge.merge) and the tests run both on the same
 * inputs. Anything unusual in a folder (a name that is not ASCII, a link, a
 * special file, a failed lstat, an unreadable folder) is handed back to the
 * Python path (None), which owns the rules for those. A walk's folders are
 * read ahead by a thread (Readahead), so its system calls run on another
 * core.
 *
 * Built by the project's install (hatch_build.py); the engine runs without
 * it (syncagent/native/__init__.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <time.h>

#define NATIVE_VERSION 4

/* What configure() hands over: the record types and kind values of the Python side. */
static PyObject *EntryType;       /* records.Entry: a NamedTuple (kind, size, mtime_ns, ino) */
static PyObject *RemoteType;      /* providers.base.RemoteEntry: a slots dataclass */
static PyObject *RemoteSlots[8];  /* its member descriptors in field order */
static PyObject *FileKind, *DirKind;      /* "file", "dir" */
static PyObject *RFileKind, *RDirKind;    /* Kind.FILE, Kind.DIR */
static PyObject *EmptyStr, *StrPath, *StrKind, *StrRev;

static const char TEMP_PREFIX[] = ".syncagent-";
static const char TEMP_SUFFIX[] = ".tmp";

enum { K_FILE, K_DIR, K_MARK, K_TEMP };

typedef struct {
    size_t off;   /* of the name (a marker's: name + "/") in the names buffer */
    size_t len;
    const char *name;   /* names + off, once the folder is read whole (for the sort) */
    int kind;
    long long size, mtime_ns;
    unsigned long long ino;
} raw_t;

typedef struct {
    raw_t *items;
    size_t n, cap;
    char *names;
    size_t used, room;
} folder_t;

static void folder_free(folder_t *f) {
    free(f->items);
    free(f->names);
}

static int push_name(folder_t *f, const char *name, size_t len, int slash, size_t *off) {
    size_t need = f->used + len + 2;
    if (need > f->room) {
        size_t room = f->room ? f->room : 4096;
        while (room < need) room *= 2;
        char *p = realloc(f->names, room);
        if (!p) return -1;
        f->names = p;
        f->room = room;
    }
    *off = f->used;
    memcpy(f->names + f->used, name, len);
    if (slash) f->names[f->used + len++] = '/';
    f->names[f->used + len] = '\0';
    f->used += len + 1;
    return 0;
}

static raw_t *push_item(folder_t *f) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        raw_t *p = realloc(f->items, cap * sizeof(raw_t));
        if (!p) return NULL;
        f->items = p;
        f->cap = cap;
    }
    return &f->items[f->n++];
}

static int push_entry(folder_t *f, const raw_t *item, const char *name, size_t len) {
    raw_t *slot = push_item(f);
    if (!slot) return -1;
    *slot = *item;
    if (push_name(f, name, len, 0, &slot->off) != 0) return -1;
    slot->len = len;
    if (item->kind == K_DIR) {   /* where the folder's contents come in the sorted order */
        raw_t *mark = push_item(f);
        if (!mark) return -1;
        *mark = *item;
        mark->kind = K_MARK;
        if (push_name(f, name, len, 1, &mark->off) != 0) return -1;
        mark->len = len + 1;
    }
    return 0;
}

/* Read a whole folder without the GIL. Returns -1 when out of memory, else 0
 * with *odd set when the folder needs the Python path (it could not be
 * opened, or holds a name that is not ASCII, a link, a special file, a name
 * whose lstat failed). An odd folder's subfolders are still listed (K_DIR):
 * the read-ahead thread descends into them. */
static int by_name(const void *a, const void *b) {
    return strcmp(((const raw_t *)a)->name, ((const raw_t *)b)->name);
}

static int collect(const char *path, folder_t *f, int *odd) {
    *odd = 0;
    DIR *d = opendir(path);
    if (!d) {
        *odd = 1;
        return 0;
    }
    int fd = dirfd(d), rc = 0;
    struct dirent *de;
    struct stat st;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno) *odd = 1;
            break;
        }
        const char *name = de->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
        size_t len = strlen(name);
        int ascii = 1;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)name[i] & 0x80) { ascii = 0; break; }
        raw_t item = {0};
        int known = 1;
        if (ascii && len >= sizeof(TEMP_PREFIX) - 1 && memcmp(name, TEMP_PREFIX, sizeof(TEMP_PREFIX) - 1) == 0
                && len >= sizeof(TEMP_SUFFIX) - 1
                && memcmp(name + len - (sizeof(TEMP_SUFFIX) - 1), TEMP_SUFFIX, sizeof(TEMP_SUFFIX) - 1) == 0) {
            item.kind = K_TEMP;
        } else if (de->d_type == DT_DIR) {
            item.kind = K_DIR;
            item.ino = (unsigned long long)de->d_ino;
        } else if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN) {
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                known = 0;
            } else if (S_ISREG(st.st_mode)) {
                item.kind = K_FILE;
                item.size = (long long)st.st_size;
                item.mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
                item.ino = (unsigned long long)st.st_ino;
            } else if (S_ISDIR(st.st_mode) && de->d_type == DT_UNKNOWN) {
                item.kind = K_DIR;
                item.ino = (unsigned long long)de->d_ino;
            } else {
                known = 0;
            }
        } else {
            known = 0;   /* a link, a fifo, a socket, a device: the Python path says why */
        }
        if (!ascii || !known) {
            *odd = 1;
            if (!known || item.kind != K_DIR) continue;
        }
        if (push_entry(f, &item, name, len) != 0) { rc = -1; break; }
    }
    closedir(d);
    if (rc == 0 && !*odd && f->n > 1) {   /* sorted here, off the GIL (the read-ahead thread's, mostly) */
        for (size_t k = 0; k < f->n; k++) f->items[k].name = f->names + f->items[k].off;
        qsort(f->items, f->n, sizeof(raw_t), by_name);
    }
    return rc;
}


/* The decimal digits of v at p; returns the end. */
static char *put_ull(char *p, unsigned long long v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_ll(char *p, long long v) {
    if (v >= 0) return put_ull(p, (unsigned long long)v);
    *p++ = '-';
    return put_ull(p, 0ULL - (unsigned long long)v);
}

/* A local file's rev, f"{mtime_ns}-{size}-{ino}" (localside.entry_rev), into buf (64 bytes); its length. */
static size_t format_rev(char *buf, long long mtime_ns, long long size, unsigned long long ino) {
    char *p = put_ll(buf, mtime_ns);
    *p++ = '-';
    p = put_ll(p, size);
    *p++ = '-';
    p = put_ull(p, ino);
    return (size_t)(p - buf);
}

/* prefix + name as a str; UTF-8 (the NFC path) or the filesystem's encoding (a spelling on disk). */
static PyObject *joined(const char *prefix, size_t plen, const char *name, size_t nlen, int fs) {
    char small[1024];
    size_t len = plen + nlen;
    char *buf = len <= sizeof(small) ? small : malloc(len);
    if (!buf) return PyErr_NoMemory();
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, name, nlen);
    PyObject *s = fs ? PyUnicode_DecodeFSDefaultAndSize(buf, (Py_ssize_t)len)
                     : PyUnicode_DecodeUTF8(buf, (Py_ssize_t)len, "strict");
    if (buf != small) free(buf);
    return s;
}

static PyObject *new_entry(PyObject *kind, long long size, long long mtime_ns, unsigned long long ino) {
    PyTypeObject *t = (PyTypeObject *)EntryType;
    PyObject *e = t->tp_alloc(t, 4);
    if (!e) return NULL;
    PyObject *s = PyLong_FromLongLong(size), *m = PyLong_FromLongLong(mtime_ns),
             *i = PyLong_FromUnsignedLongLong(ino);
    if (!s || !m || !i) {
        Py_XDECREF(s); Py_XDECREF(m); Py_XDECREF(i); Py_DECREF(e);
        return NULL;
    }
    Py_INCREF(kind);
    PyTuple_SET_ITEM(e, 0, kind);
    PyTuple_SET_ITEM(e, 1, s);
    PyTuple_SET_ITEM(e, 2, m);
    PyTuple_SET_ITEM(e, 3, i);
    return e;
}

/* A RemoteEntry, its slots set directly: the dataclass's frozen __init__ costs ~2.6 us. */
static PyObject *new_remote(PyObject *path, const raw_t *it) {
    PyTypeObject *t = (PyTypeObject *)RemoteType;
    char num[64];
    PyObject *values[8] = {NULL};
    PyObject *e = t->tp_alloc(t, 0);
    if (!e) return NULL;
    int file = it->kind == K_FILE;
    values[0] = Py_NewRef(path);
    values[1] = Py_NewRef(file ? RFileKind : RDirKind);
    values[2] = PyLong_FromLongLong(file ? it->size : 0);
    values[3] = PyLong_FromLongLong(file ? it->mtime_ns : 0);
    if (file) {
        size_t n = format_rev(num, it->mtime_ns, it->size, it->ino);
        values[4] = PyUnicode_FromStringAndSize(num, (Py_ssize_t)n);
    } else {
        values[4] = Py_NewRef(EmptyStr);
    }
    values[5] = Py_NewRef(Py_None);
    values[6] = PyUnicode_FromStringAndSize(num, put_ull(num, it->ino) - num);
    values[7] = Py_NewRef(Py_None);
    int failed = 0;
    for (int k = 0; k < 8; k++) {
        if (!values[k]) { failed = 1; continue; }
        if (!failed && Py_TYPE(RemoteSlots[k])->tp_descr_set(RemoteSlots[k], e, values[k]) != 0) failed = 1;
        Py_DECREF(values[k]);
    }
    if (failed) {
        Py_DECREF(e);
        return NULL;
    }
    return e;
}

static PyObject *tuple4(PyObject *a, PyObject *b, PyObject *c, PyObject *d) {
    PyObject *t = PyTuple_New(4);
    if (!t) {
        Py_DECREF(a); Py_DECREF(b); Py_DECREF(c); Py_DECREF(d);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    PyTuple_SET_ITEM(t, 2, c);
    PyTuple_SET_ITEM(t, 3, d);
    return t;
}

/* One item of scan._read_folder's list: (rel, entry, abs path, disk rel). */
static PyObject *make_item(const folder_t *f, const raw_t *it, const char *rel_p, size_t rel_n,
                           const char *abs_p, size_t abs_n, const char *disk_p, size_t disk_n, int remote) {
    const char *name = f->names + it->off;
    PyObject *rel = joined(rel_p, rel_n, name, it->len, 0);
    if (!rel) return NULL;
    if (it->kind == K_MARK)
        return tuple4(rel, Py_NewRef(Py_None), Py_NewRef(EmptyStr), Py_NewRef(EmptyStr));
    PyObject *entry = remote ? new_remote(rel, it)
                             : new_entry(it->kind == K_FILE ? FileKind : DirKind, it->kind == K_FILE ? it->size : 0,
                                         it->kind == K_FILE ? it->mtime_ns : 0, it->ino);
    if (!entry) {
        Py_DECREF(rel);
        return NULL;
    }
    if (it->kind == K_FILE) return tuple4(rel, entry, Py_NewRef(EmptyStr), Py_NewRef(EmptyStr));
    PyObject *abs_path = joined(abs_p, abs_n, name, it->len, 1);
    PyObject *disk_rel = abs_path ? joined(disk_p, disk_n, name, it->len, 1) : NULL;
    if (!disk_rel) {
        Py_XDECREF(abs_path); Py_DECREF(rel); Py_DECREF(entry);
        return NULL;
    }
    return tuple4(rel, entry, abs_path, disk_rel);
}

/* ---- read-ahead ------------------------------------------------------------------------------------ */
/*
 * A walk reads its folders in ascending order of their paths (scan.walk:
 * a folder is read when its own entry is yielded, and entries come in
 * path order). A read-ahead thread reads them in that same order, without
 * the GIL, a bounded number of folders ahead: the walk then finds each
 * folder already read, and its system calls run on another core beside
 * the interpreter's work. The order is found with a heap of the folder
 * paths seen and not yet read: a folder's path is greater than its
 * parent's, so the smallest unread path is always in the heap.
 *
 * Where the walk's order is not byte order (names that are not ASCII, NFC
 * sorted) or it skips a folder (an ignore rule), the walk asks for a folder
 * the thread has passed or not reached: it reads it itself. Folders the
 * walk went past unasked are dropped, and the thread does not descend
 * below them.
 */

typedef struct ra_item {
    char *path;
    folder_t f;
    int odd;
    struct ra_item *next;
} ra_item;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop, done;
    ra_item *head, *tail;
    size_t count, limit;
    char *last;           /* the last path read (a copy) */
    char **pruned;        /* folders dropped unasked: nothing below them is read */
    size_t npruned, pruned_cap;
    char *root;
    size_t nread, ntaken;   /* folders the thread read; folders the walk took from it */
} ReadaheadObject;

static void ra_item_free(ra_item *it) {
    folder_free(&it->f);
    free(it->path);
    free(it);
}

typedef struct {
    char **v;
    size_t n, cap;
} heap_t;

static int heap_push(heap_t *h, char *p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        char **v = realloc(h->v, cap * sizeof(char *));
        if (!v) return -1;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (strcmp(h->v[up], p) <= 0) break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = p;
    return 0;
}

static char *heap_pop(heap_t *h) {
    char *top = h->v[0], *last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && strcmp(h->v[c + 1], h->v[c]) < 0) c++;
        if (strcmp(last, h->v[c]) <= 0) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static char *path_join(const char *dir, const char *name, size_t nlen) {
    size_t dlen = strlen(dir);
    int slash = dlen == 0 || dir[dlen - 1] != '/';
    char *p = malloc(dlen + slash + nlen + 1);
    if (!p) return NULL;
    memcpy(p, dir, dlen);
    if (slash) p[dlen] = '/';
    memcpy(p + dlen + slash, name, nlen);
    p[dlen + slash + nlen] = '\0';
    return p;
}

static int under(const char *path, const char *folder) {
    size_t n = strlen(folder);
    return strncmp(path, folder, n) == 0 && path[n] == '/';
}

/* Called with the mutex held. */
static int ra_is_pruned(ReadaheadObject *ra, const char *path) {
    for (size_t i = 0; i < ra->npruned; i++)
        if (under(path, ra->pruned[i])) return 1;
    return 0;
}

static void *ra_main(void *arg) {
    ReadaheadObject *ra = arg;
    heap_t heap = {0};
    char *first = strdup(ra->root);
    if (!first || heap_push(&heap, first) != 0) free(first);
    while (heap.n) {
        char *path = heap_pop(&heap);
        pthread_mutex_lock(&ra->mu);
        while (!ra->stop && ra->count >= ra->limit) pthread_cond_wait(&ra->cv, &ra->mu);
        int stop = ra->stop, skip = ra_is_pruned(ra, path);
        pthread_mutex_unlock(&ra->mu);
        if (stop) {
            free(path);
            break;
        }
        if (skip) {
            free(path);
            continue;
        }
        ra_item *it = calloc(1, sizeof(ra_item));
        if (!it || collect(path, &it->f, &it->odd) != 0) {
            if (it) ra_item_free(it); else free(path);
            break;   /* out of memory: the walk reads the rest itself */
        }
        it->path = path;
        for (size_t k = 0; k < it->f.n; k++) {
            const raw_t *e = &it->f.items[k];
            if (e->kind != K_DIR) continue;
            char *child = path_join(path, it->f.names + e->off, e->len);
            if (!child || heap_push(&heap, child) != 0) {
                free(child);
                break;
            }
        }
        char *last = strdup(path);
        pthread_mutex_lock(&ra->mu);
        if (ra->tail) ra->tail->next = it; else ra->head = it;
        ra->tail = it;
        ra->count++;
        ra->nread++;
        free(ra->last);
        ra->last = last;
        pthread_cond_broadcast(&ra->cv);
        pthread_mutex_unlock(&ra->mu);
    }
    while (heap.n) free(heap_pop(&heap));
    free(heap.v);
    pthread_mutex_lock(&ra->mu);
    ra->done = 1;
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
    return NULL;
}

/* Called with the mutex held: drop a folder the walk went past, and stop the thread below it. */
static void ra_drop(ReadaheadObject *ra, ra_item *prev, ra_item *it) {
    if (prev) prev->next = it->next; else ra->head = it->next;
    if (ra->tail == it) ra->tail = prev;
    ra->count--;
    if (!ra_is_pruned(ra, it->path)) {
        if (ra->npruned == ra->pruned_cap) {
            size_t cap = ra->pruned_cap ? ra->pruned_cap * 2 : 16;
            char **v = realloc(ra->pruned, cap * sizeof(char *));
            if (v) {
                ra->pruned = v;
                ra->pruned_cap = cap;
            }
        }
        if (ra->npruned < ra->pruned_cap) {
            ra->pruned[ra->npruned++] = it->path;
            it->path = NULL;
        }
    }
    ra_item_free(it);
}

/* The folder `path` as the thread read it, or NULL: the caller reads it itself. GIL released. */
static ra_item *ra_take(ReadaheadObject *ra, const char *path) {
    ra_item *found = NULL;
    pthread_mutex_lock(&ra->mu);
    for (;;) {
        ra_item *prev = NULL, *it = ra->head;
        while (it) {
            ra_item *next = it->next;
            int cmp = strcmp(it->path, path);
            if (cmp == 0) {
                if (prev) prev->next = next; else ra->head = next;
                if (ra->tail == it) ra->tail = prev;
                ra->count--;
                ra->ntaken++;
                found = it;
                break;
            }
            if (cmp < 0) {   /* before this one in the order and never asked for: the walk went past it */
                ra_drop(ra, prev, it);
            } else {
                prev = it;
            }
            it = next;
        }
        if (found || ra->done || (ra->last && strcmp(path, ra->last) <= 0) || ra->count >= ra->limit) break;
        /* Wake the thread (a drop above may have made room), then wait for its next folder. A thread that
         * reads nothing for a second (a slow mount) is not waited for: the walk reads the folder itself. */
        pthread_cond_broadcast(&ra->cv);
        size_t before = ra->nread;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        int waited = 0;
        while (ra->nread == before && !ra->done && waited == 0)
            waited = pthread_cond_timedwait(&ra->cv, &ra->mu, &until);
        if (waited != 0) break;
    }
    pthread_cond_broadcast(&ra->cv);
    pthread_mutex_unlock(&ra->mu);
    return found;
}

/* Ask a worker thread to stop (it waits on `cv` and reads `*stop` under `mu`) and join it. GIL held. */
static void stop_worker(pthread_mutex_t *mu, pthread_cond_t *cv, int *stop, pthread_t thread) {
    pthread_mutex_lock(mu);
    *stop = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
}

static void ra_stop(ReadaheadObject *ra) {
    if (!ra->running) return;
    stop_worker(&ra->mu, &ra->cv, &ra->stop, ra->thread);
    ra->running = 0;
    while (ra->head) {
        ra_item *it = ra->head;
        ra->head = it->next;
        ra_item_free(it);
    }
    ra->tail = NULL;
    ra->count = 0;
}

static PyObject *ra_close(PyObject *self, PyObject *unused) {
    ra_stop((ReadaheadObject *)self);
    Py_RETURN_NONE;
}

static void ra_dealloc(PyObject *self) {
    ReadaheadObject *ra = (ReadaheadObject *)self;
    ra_stop(ra);
    for (size_t i = 0; i < ra->npruned; i++) free(ra->pruned[i]);
    free(ra->pruned);
    free(ra->last);
    free(ra->root);
    pthread_mutex_destroy(&ra->mu);
    pthread_cond_destroy(&ra->cv);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *ra_stats(PyObject *self, PyObject *unused) {
    ReadaheadObject *ra = (ReadaheadObject *)self;
    size_t nread, ntaken;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&ra->mu);
    nread = ra->nread;
    ntaken = ra->ntaken;
    pthread_mutex_unlock(&ra->mu);
    Py_END_ALLOW_THREADS
    return Py_BuildValue("(nn)", (Py_ssize_t)nread, (Py_ssize_t)ntaken);
}

static PyMethodDef ra_methods[] = {
    {"close", ra_close, METH_NOARGS, "stop the thread and drop what it read"},
    {"stats", ra_stats, METH_NOARGS, "(folders read by the thread, folders the walk took from it)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReadaheadType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "syncagent.native._native.Readahead",
    .tp_basicsize = sizeof(ReadaheadObject),
    .tp_dealloc = ra_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "folders below a root read ahead, in a walk's order, by a thread",
    .tp_methods = ra_methods,
};

static PyObject *new_readahead(PyObject *self, PyObject *args) {
    PyObject *root;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O&n", PyUnicode_FSConverter, &root, &limit)) return NULL;
    ReadaheadObject *ra = PyObject_New(ReadaheadObject, &ReadaheadType);
    if (!ra) {
        Py_DECREF(root);
        return NULL;
    }
    ra->running = ra->stop = ra->done = 0;
    ra->head = ra->tail = NULL;
    ra->count = ra->nread = ra->ntaken = 0;
    ra->limit = limit > 0 ? (size_t)limit : 1;
    ra->last = NULL;
    ra->pruned = NULL;
    ra->npruned = ra->pruned_cap = 0;
    ra->root = strdup(PyBytes_AS_STRING(root));
    Py_DECREF(root);
    pthread_mutex_init(&ra->mu, NULL);
    pthread_cond_init(&ra->cv, NULL);
    if (!ra->root) {
        Py_DECREF(ra);
        return PyErr_NoMemory();
    }
    int err = pthread_create(&ra->thread, NULL, ra_main, ra);
    if (err != 0) {
        Py_DECREF(ra);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    ra->running = 1;
    return (PyObject *)ra;
}

/* ---- runs of plain files, kept in C ---------------------------------------------------------------- */
/*
 * read_folder(..., raw=True) hands a plain folder's consecutive files (no
 * folder between them in the sorted order) over as one RawRun: their NFC
 * paths (ASCII: the on-disk names) and lstat fields in C arrays. The walk
 * passes a run on as one item; the merge reads its records and makes the
 * Entry or RemoteEntry (exactly what read_folder would have made) only
 * for a path it keeps. On a no-op run that is almost none.
 */

typedef struct {
    size_t off, len;   /* of the relative path in the run's text */
    long long size, mtime_ns;
    unsigned long long ino;
} rrec_t;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    rrec_t *recs;
    char *text;
} RawRunObject;

static void rr_dealloc(PyObject *self) {
    RawRunObject *rr = (RawRunObject *)self;
    free(rr->recs);
    free(rr->text);
    Py_TYPE(self)->tp_free(self);
}

static Py_ssize_t rr_len(PyObject *self) {
    return ((RawRunObject *)self)->n;
}

static PyObject *rr_path(const RawRunObject *rr, const rrec_t *r) {
    return PyUnicode_DecodeUTF8(rr->text + r->off, (Py_ssize_t)r->len, "strict");
}

/* The record as read_folder's Entry (remote: RemoteEntry) for `path`. New reference. */
static PyObject *rr_entry(const rrec_t *r, PyObject *path, int remote) {
    if (!remote) return new_entry(FileKind, r->size, r->mtime_ns, r->ino);
    raw_t it = {0};
    it.kind = K_FILE;
    it.size = r->size;
    it.mtime_ns = r->mtime_ns;
    it.ino = r->ino;
    return new_remote(path, &it);
}

/* The run as read_folder would have listed it: [(path, Entry)] or, remote, [RemoteEntry]. For tests. */
static PyObject *rr_items(PyObject *self, PyObject *arg) {
    RawRunObject *rr = (RawRunObject *)self;
    int remote = PyObject_IsTrue(arg);
    if (remote < 0) return NULL;
    PyObject *out = PyList_New(0);
    for (Py_ssize_t k = 0; out && k < rr->n; k++) {
        PyObject *path = rr_path(rr, &rr->recs[k]);
        PyObject *entry = path ? rr_entry(&rr->recs[k], path, remote) : NULL;
        PyObject *item = !entry ? NULL : remote ? Py_NewRef(entry) : PyTuple_Pack(2, path, entry);
        Py_XDECREF(path);
        Py_XDECREF(entry);
        if (!item || PyList_Append(out, item) != 0) Py_CLEAR(out);
        Py_XDECREF(item);
    }
    return out;
}

static PyMethodDef rr_methods[] = {
    {"items", rr_items, METH_O, "items(remote) -> [(path, Entry)] | [RemoteEntry]: the run's records as objects"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods rr_sequence = {.sq_length = rr_len};

static PyTypeObject RawRunType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "syncagent.native._native.RawRun",
    .tp_basicsize = sizeof(RawRunObject),
    .tp_dealloc = rr_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "consecutive plain files of one folder, kept as C records until the merge keeps one",
    .tp_as_sequence = &rr_sequence,
    .tp_methods = rr_methods,
};

/* The files f->items[from:to] (all K_FILE) under rel_prefix as a RawRun. */
static PyObject *new_raw_run(const folder_t *f, size_t from, size_t to, const char *rel_p, size_t rel_n) {
    RawRunObject *rr = PyObject_New(RawRunObject, &RawRunType);
    if (!rr) return NULL;
    rr->n = (Py_ssize_t)(to - from);
    rr->recs = malloc((to - from) * sizeof(rrec_t));
    size_t room = 0;
    for (size_t k = from; k < to; k++) room += rel_n + f->items[k].len + 1;
    rr->text = malloc(room ? room : 1);
    if (!rr->recs || !rr->text) {
        Py_DECREF(rr);
        return PyErr_NoMemory();
    }
    size_t used = 0;
    for (size_t k = from; k < to; k++) {
        const raw_t *it = &f->items[k];
        rrec_t *r = &rr->recs[k - from];
        r->off = used;
        r->len = rel_n + it->len;
        memcpy(rr->text + used, rel_p, rel_n);
        memcpy(rr->text + used + rel_n, f->names + it->off, it->len);
        rr->text[used + r->len] = '\0';
        used += r->len + 1;
        r->size = it->size;
        r->mtime_ns = it->mtime_ns;
        r->ino = it->ino;
    }
    return (PyObject *)rr;
}

/* read_folder's raw mode: f->items[from:to] (files and temps) as (first path, RawRun, "", "") in `items`,
 * the temps' on-disk paths in `temps`. */
static int raw_run_items(folder_t *f, size_t from, size_t to, const char *rel_p, size_t rel_n,
                         const char *disk_p, size_t disk_n, PyObject *items, PyObject *temps) {
    size_t files = from;   /* the temps go to `temps`; the files move down over them */
    for (size_t k = from; k < to; k++) {
        if (f->items[k].kind == K_TEMP) {
            PyObject *t = joined(disk_p, disk_n, f->names + f->items[k].off, f->items[k].len, 1);
            if (!t || PyList_Append(temps, t) != 0) {
                Py_XDECREF(t);
                return -1;
            }
            Py_DECREF(t);
        } else {
            f->items[files++] = f->items[k];
        }
    }
    if (files == from) return 0;
    PyObject *run = new_raw_run(f, from, files, rel_p, rel_n);
    PyObject *first = run ? rr_path((RawRunObject *)run, &((RawRunObject *)run)->recs[0]) : NULL;
    PyObject *item = first ? tuple4(first, run, Py_NewRef(EmptyStr), Py_NewRef(EmptyStr)) : NULL;
    if (!first) Py_XDECREF(run);
    if (!item || PyList_Append(items, item) != 0) {
        Py_XDECREF(item);
        return -1;
    }
    Py_DECREF(item);
    return 0;
}

static PyObject *read_folder(PyObject *self, PyObject *args) {
    PyObject *abs_dir, *disk_prefix, *rel_prefix, *ahead = Py_None;
    int remote, raw = 0;
    if (!PyArg_ParseTuple(args, "UUUp|Op", &abs_dir, &disk_prefix, &rel_prefix, &remote, &ahead, &raw))
        return NULL;
    if (ahead != Py_None && !PyObject_TypeCheck(ahead, &ReadaheadType)) {
        PyErr_SetString(PyExc_TypeError, "read_folder: the fifth argument must be a Readahead or None");
        return NULL;
    }
    if (!EntryType) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    Py_ssize_t rel_n;
    const char *rel_p = PyUnicode_AsUTF8AndSize(rel_prefix, &rel_n);
    if (!rel_p) {   /* a prefix with surrogates: the Python path */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *abs_b = PyUnicode_EncodeFSDefault(abs_dir);
    if (!abs_b) return NULL;
    PyObject *disk_b = PyUnicode_EncodeFSDefault(disk_prefix);
    if (!disk_b) {
        Py_DECREF(abs_b);
        return NULL;
    }
    const char *path = PyBytes_AS_STRING(abs_b);
    folder_t f = {0};
    int rc = 0, odd = 0;
    ReadaheadObject *ra = ahead != Py_None && ((ReadaheadObject *)ahead)->running ? (ReadaheadObject *)ahead : NULL;
    Py_BEGIN_ALLOW_THREADS
    ra_item *got = ra ? ra_take(ra, path) : NULL;
    if (got) {
        f = got->f;   /* the folder's data moves here */
        odd = got->odd;
        got->f = (folder_t){0};
        ra_item_free(got);
    } else {
        rc = collect(path, &f, &odd);
    }
    Py_END_ALLOW_THREADS
    PyObject *result = NULL, *items = NULL, *temps = NULL;
    if (rc < 0) {
        PyErr_NoMemory();
        goto done;
    }
    if (odd) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* os.scandir's DirEntry.path: os.path.join(folder, name) */
    size_t abs_n = (size_t)PyBytes_GET_SIZE(abs_b);
    char *abs_p = malloc(abs_n + 1);
    if (!abs_p) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(abs_p, path, abs_n);
    if (abs_n == 0 || abs_p[abs_n - 1] != '/') abs_p[abs_n++] = '/';
    items = PyList_New(0);
    temps = PyList_New(0);
    if (!items || !temps) {
        free(abs_p);
        goto done;
    }
    const char *disk_p = PyBytes_AS_STRING(disk_b);
    size_t disk_n = (size_t)PyBytes_GET_SIZE(disk_b);
    for (size_t k = 0; k < f.n; k++) {
        const raw_t *it = &f.items[k];
        if (raw && it->kind == K_FILE) {   /* this file and the ones after it up to a folder: one run */
            size_t end = k + 1;
            while (end < f.n && (f.items[end].kind == K_FILE || f.items[end].kind == K_TEMP)) end++;
            if (raw_run_items(&f, k, end, rel_p, (size_t)rel_n, disk_p, disk_n, items, temps) != 0) {
                free(abs_p);
                goto done;
            }
            k = end - 1;
            continue;
        }
        PyObject *obj = it->kind == K_TEMP ? joined(disk_p, disk_n, f.names + it->off, it->len, 1)
                                           : make_item(&f, it, rel_p, (size_t)rel_n, abs_p, abs_n, disk_p, disk_n,
                                                       remote);
        if (!obj || PyList_Append(it->kind == K_TEMP ? temps : items, obj) != 0) {
            Py_XDECREF(obj);
            free(abs_p);
            goto done;
        }
        Py_DECREF(obj);
    }
    free(abs_p);
    result = PyTuple_Pack(2, items, temps);
done:
    Py_XDECREF(items);
    Py_XDECREF(temps);
    Py_DECREF(abs_b);
    Py_DECREF(disk_b);
    folder_free(&f);
    return result;
}


/* ---- the base, read by a thread ------------------------------------------------------------------- */
#ifdef HAVE_SQLITE
#include <sqlite3.h>
/*
 * The merge's third stream, (path, kind, size, mtime_ns, ino, rrev) of every
 * base row in path order, read by a thread on its own read-only connection
 * (WAL: it sees what is committed) into chunks of plain C records. The merge
 * compares them without building a Python object per row (that is most of
 * what reading 100,000 rows through the sqlite3 module costs) and makes one
 * only for a row it keeps. Iterated from Python it yields the same tuples
 * as the sqlite3 cursor (merge_py, the feed's diff).
 */

typedef struct {
    size_t path, path_n, rrev, rrev_n;   /* offsets into the chunk's text */
    int file;
    long long size, mtime_ns, ino;
} brow_t;

typedef struct bchunk {
    brow_t *rows;
    size_t n, cap;
    char *text;
    size_t used, room;
    struct bchunk *next;
} bchunk;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int running, stop, done;
    bchunk *head, *tail, *cur;   /* cur: the chunk being read by the consumer */
    bchunk *prev;                /* the one before: a row taken from it stays valid for one more advance */
    size_t pos, count, limit;
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char *error;                 /* sqlite's message when a step failed */
} BaseReaderObject;

static void bchunk_free(bchunk *c) {
    if (!c) return;
    free(c->rows);
    free(c->text);
    free(c);
}

static int bchunk_text(bchunk *c, const void *data, size_t n, size_t *off) {
    if (c->used + n + 1 > c->room) {
        size_t room = c->room ? c->room : 65536;
        while (room < c->used + n + 1) room *= 2;
        char *t = realloc(c->text, room);
        if (!t) return -1;
        c->text = t;
        c->room = room;
    }
    *off = c->used;
    if (n) memcpy(c->text + c->used, data, n);
    c->text[c->used + n] = '\0';
    c->used += n + 1;
    return 0;
}

#define BASE_CHUNK 4096

static void *br_main(void *arg) {
    BaseReaderObject *br = arg;
    int rc = SQLITE_ROW;
    while (rc == SQLITE_ROW) {
        bchunk *c = calloc(1, sizeof(bchunk));
        if (!c || !(c->rows = malloc(BASE_CHUNK * sizeof(brow_t)))) {
            bchunk_free(c);
            pthread_mutex_lock(&br->mu);
            br->error = strdup("out of memory reading the base");
            pthread_mutex_unlock(&br->mu);
            break;
        }
        c->cap = BASE_CHUNK;
        while (c->n < c->cap && (rc = sqlite3_step(br->stmt)) == SQLITE_ROW) {
            brow_t *r = &c->rows[c->n];
            const unsigned char *path = sqlite3_column_text(br->stmt, 0);
            size_t path_n = (size_t)sqlite3_column_bytes(br->stmt, 0);
            const unsigned char *kind = sqlite3_column_text(br->stmt, 1);
            r->file = kind && strcmp((const char *)kind, "file") == 0;
            r->size = sqlite3_column_int64(br->stmt, 2);
            r->mtime_ns = sqlite3_column_int64(br->stmt, 3);
            r->ino = sqlite3_column_int64(br->stmt, 4);
            const unsigned char *rrev = sqlite3_column_text(br->stmt, 5);
            size_t rrev_n = (size_t)sqlite3_column_bytes(br->stmt, 5);
            if (!path || bchunk_text(c, path, path_n, &r->path) != 0
                    || bchunk_text(c, rrev ? (const char *)rrev : "", rrev ? rrev_n : 0, &r->rrev) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
            r->path_n = path_n;
            r->rrev_n = rrev ? rrev_n : 0;
            c->n++;
        }
        pthread_mutex_lock(&br->mu);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE && !br->error) br->error = strdup(sqlite3_errmsg(br->db));
        if (c->n) {
            if (br->tail) br->tail->next = c; else br->head = c;
            br->tail = c;
            br->count++;
        } else {
            bchunk_free(c);
        }
        pthread_cond_broadcast(&br->cv);
        while (!br->stop && br->count >= br->limit) pthread_cond_wait(&br->cv, &br->mu);
        int stop = br->stop;
        pthread_mutex_unlock(&br->mu);
        if (stop) break;
    }
    pthread_mutex_lock(&br->mu);
    br->done = 1;
    pthread_cond_broadcast(&br->cv);
    pthread_mutex_unlock(&br->mu);
    return NULL;
}

/* The next row, or NULL at the end or on an error (raised). GIL held; released while waiting. */
static const brow_t *br_next(BaseReaderObject *br, const char **text) {
    if (br->cur && br->pos < br->cur->n) {
        *text = br->cur->text;
        return &br->cur->rows[br->pos++];
    }
    bchunk *old = br->prev, *got = NULL;
    br->prev = br->cur;
    br->cur = NULL;
    char *error = NULL;
    Py_BEGIN_ALLOW_THREADS
    bchunk_free(old);
    pthread_mutex_lock(&br->mu);
    while (!br->head && !br->done) pthread_cond_wait(&br->cv, &br->mu);
    got = br->head;
    if (got) {
        br->head = got->next;
        if (!br->head) br->tail = NULL;
        br->count--;
        pthread_cond_broadcast(&br->cv);
    } else if (br->error) {
        error = strdup(br->error);
    }
    pthread_mutex_unlock(&br->mu);
    Py_END_ALLOW_THREADS
    if (!got) {
        if (error) {
            PyObject *mod = PyImport_ImportModule("sqlite3");
            PyObject *exc = mod ? PyObject_GetAttrString(mod, "DatabaseError") : NULL;
            PyErr_SetString(exc ? exc : PyExc_RuntimeError, error);
            Py_XDECREF(exc);
            Py_XDECREF(mod);
            free(error);
        }
        return NULL;
    }
    br->cur = got;
    br->pos = 1;
    *text = got->text;
    return &got->rows[0];
}

static PyObject *brow_tuple(const brow_t *r, const char *text) {
    return Py_BuildValue("(s#OLLLs#)", text + r->path, (Py_ssize_t)r->path_n, r->file ? FileKind : DirKind,
                         r->size, r->mtime_ns, r->ino, text + r->rrev, (Py_ssize_t)r->rrev_n);
}

static PyObject *br_iternext(PyObject *self) {
    const char *text;
    const brow_t *r = br_next((BaseReaderObject *)self, &text);
    return r ? brow_tuple(r, text) : NULL;
}

static void br_stop(BaseReaderObject *br) {
    if (br->running) {
        stop_worker(&br->mu, &br->cv, &br->stop, br->thread);
        br->running = 0;
    }
    while (br->head) {
        bchunk *c = br->head;
        br->head = c->next;
        bchunk_free(c);
    }
    br->tail = NULL;
    bchunk_free(br->cur);
    bchunk_free(br->prev);
    br->cur = br->prev = NULL;
    if (br->stmt) sqlite3_finalize(br->stmt);
    if (br->db) sqlite3_close(br->db);
    br->stmt = NULL;
    br->db = NULL;
}

static PyObject *br_close(PyObject *self, PyObject *unused) {
    br_stop((BaseReaderObject *)self);
    Py_RETURN_NONE;
}

static void br_dealloc(PyObject *self) {
    BaseReaderObject *br = (BaseReaderObject *)self;
    br_stop(br);
    free(br->error);
    pthread_mutex_destroy(&br->mu);
    pthread_cond_destroy(&br->cv);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef br_methods[] = {
    {"close", br_close, METH_NOARGS, "stop the thread and close the connection"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BaseReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "syncagent.native._native.BaseReader",
    .tp_basicsize = sizeof(BaseReaderObject),
    .tp_dealloc = br_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a pair's base rows in path order, read by a thread on a read-only connection",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = br_iternext,
    .tp_methods = br_methods,
};

static PyObject *new_base_reader(PyObject *self, PyObject *args) {
    PyObject *path;
    long long pair;
    if (!PyArg_ParseTuple(args, "O&L", PyUnicode_FSConverter, &path, &pair)) return NULL;
    BaseReaderObject *br = PyObject_New(BaseReaderObject, &BaseReaderType);
    if (!br) {
        Py_DECREF(path);
        return NULL;
    }
    br->running = br->stop = br->done = 0;
    br->head = br->tail = br->cur = br->prev = NULL;
    br->pos = br->count = 0;
    br->limit = 4;
    br->db = NULL;
    br->stmt = NULL;
    br->error = NULL;
    pthread_mutex_init(&br->mu, NULL);
    pthread_cond_init(&br->cv, NULL);
    int rc = sqlite3_open_v2(PyBytes_AS_STRING(path), &br->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    Py_DECREF(path);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(br->db, 10000);   /* as the engine's own connection waits */
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(br->db, "SELECT path, kind, size, mtime_ns, ino, rrev FROM base WHERE pair = ? "
                                "ORDER BY path", -1, &br->stmt, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(br->stmt, 1, pair);
    if (rc != SQLITE_OK) {
        /* the caller reads the base through its own connection */
        Py_DECREF(br);
        Py_RETURN_NONE;
    }
    int err = pthread_create(&br->thread, NULL, br_main, br);
    if (err != 0) {
        Py_DECREF(br);
        Py_RETURN_NONE;
    }
    br->running = 1;
    return (PyObject *)br;
}
#endif

/* ---- the merge ------------------------------------------------------------------------------------ */

static inline int same(PyObject *a, PyObject *b) {
    return a == b || PyObject_RichCompareBool(a, b, Py_EQ) == 1;
}

static int checked_tuple(PyObject *o, Py_ssize_t n, const char *what) {
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) < n || !PyUnicode_Check(PyTuple_GET_ITEM(o, 0))) {
        PyErr_Format(PyExc_TypeError, "merge: %s must be a tuple of %zd starting with a str", what, n);
        return -1;
    }
    return 0;
}

/* The merge key of the remote head: its path, NFC where it is not ASCII. New reference or NULL. */
static PyObject *remote_key(PyObject *entry, PyObject *nfc, PyObject **path_out) {
    PyObject *path = PyObject_GetAttr(entry, StrPath);
    if (!path) return NULL;
    if (!PyUnicode_Check(path)) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_TypeError, "merge: a remote entry's path must be a str");
        return NULL;
    }
    *path_out = path;
    if (PyUnicode_IS_ASCII(path)) return Py_NewRef(path);
    PyObject *key = PyObject_CallOneArg(nfc, path);
    if (key && !PyUnicode_Check(key)) {
        Py_DECREF(key);
        PyErr_SetString(PyExc_TypeError, "merge: nfc() must return a str");
        return NULL;
    }
    return key;
}

static int is_file_remote(PyObject *entry) {
    PyObject *kind = PyObject_GetAttr(entry, StrKind);
    if (!kind) return -1;
    int yes = same(kind, FileKind);
    Py_DECREF(kind);
    return yes;
}

#ifndef HAVE_SQLITE
typedef struct { int file; long long size, mtime_ns, ino; size_t path, path_n, rrev, rrev_n; } brow_t;
typedef struct BaseReaderObject BaseReaderObject;
static const brow_t *br_next(BaseReaderObject *br, const char **text) { return NULL; }
#endif

static int long_is(PyObject *o, long long v) {
    int overflow = 0;
    long long x = PyLong_Check(o) ? PyLong_AsLongLongAndOverflow(o, &overflow) : -1;
    if (x == -1 && PyErr_Occurred()) PyErr_Clear();
    return PyLong_Check(o) && !overflow && x == v;
}

/* Whether the remote rev `rev` (a str) is the raw row's rrev. */
static int rev_is(PyObject *rev, const brow_t *raw, const char *text) {
    Py_ssize_t n;
    const char *u = PyUnicode_Check(rev) ? PyUnicode_AsUTF8AndSize(rev, &n) : NULL;
    if (!u) {
        PyErr_Clear();
        return 0;
    }
    return (size_t)n == raw->rrev_n && memcmp(u, text + raw->rrev, (size_t)n) == 0;
}

/* Merge keys are compared as UTF-8 bytes, whose order is the code-point order of the paths: a record's
 * and a base row's key are their own bytes, and no str is made for a path the merge drops. */
static inline int key_cmp(const char *a, Py_ssize_t an, const char *b, Py_ssize_t bn) {
    int c = memcmp(a, b, (size_t)(an < bn ? an : bn));
    return c ? c : (an < bn ? -1 : an > bn);
}

/* The UTF-8 bytes of the str s, alive as long as s, or as *hold where s has a lone surrogate (a bytes
 * object with the surrogate passed through: the order still follows the code points). -1 on error. */
static int utf8_of(PyObject *s, PyObject **hold, const char **k, Py_ssize_t *kn) {
    *k = PyUnicode_AsUTF8AndSize(s, kn);
    if (*k) return 0;
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
    PyErr_Clear();
    PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass");
    if (!b) return -1;
    Py_XSETREF(*hold, b);
    *k = PyBytes_AS_STRING(b);
    *kn = PyBytes_GET_SIZE(b);
    return 0;
}

/* The base stream's head: a row of a BaseReader (no object at all) or the sqlite3 cursor's tuple. */
typedef struct {
    int live;
    PyObject *row, *hold;
    const brow_t *raw;
    const char *text, *k;
    Py_ssize_t kn;
} base_t;

static void base_clear(base_t *b) {
    Py_CLEAR(b->row);
    Py_CLEAR(b->hold);
    b->live = 0;
    b->raw = NULL;
}

static int base_advance(PyObject *bit, BaseReaderObject *br, base_t *b) {
    base_clear(b);
    if (br) {
        b->raw = br_next(br, &b->text);
        if (!b->raw) return PyErr_Occurred() ? -1 : 0;
        b->k = b->text + b->raw->path;
        b->kn = (Py_ssize_t)b->raw->path_n;
        b->live = 1;
        return 0;
    }
    b->row = PyIter_Next(bit);
    if (!b->row) return PyErr_Occurred() ? -1 : 0;
    if (checked_tuple(b->row, 6, "a base row") < 0 || utf8_of(PyTuple_GET_ITEM(b->row, 0), &b->hold, &b->k, &b->kn) < 0)
        return -1;
    b->live = 1;
    return 0;
}

/* One walk-side stream of the merge (local: (path, Entry) items; remote: RemoteEntry objects). Either may
 * carry RawRuns (read_folder's raw mode): a head is then one of the run's records, keyed by its own bytes,
 * with no object at all. */
typedef struct {
    PyObject *it, *nfc;
    int remote, live;
    const char *k;            /* the head's merge key (UTF-8) */
    Py_ssize_t kn;
    PyObject *key;            /* a Python head's key str (remote: its NFC path) */
    PyObject *hold;           /* the bytes behind k where the key has a surrogate */
    PyObject *obj;            /* a Python head's Entry (local) or RemoteEntry (remote) */
    PyObject *path;           /* a Python remote head's path */
    RawRunObject *run;        /* the run being read */
    Py_ssize_t pos;
    const rrec_t *raw;        /* a record head, in `run` */
} side_t;

/* A head taken off a side, with its own references (`run` keeps `raw` alive). */
typedef struct {
    PyObject *key, *obj, *path;
    RawRunObject *run;
    const rrec_t *raw;
} took_t;

static void took_clear(took_t *t) {
    Py_CLEAR(t->key);
    Py_CLEAR(t->obj);
    Py_CLEAR(t->path);
    Py_CLEAR(t->run);
    t->raw = NULL;
}

static void side_drop_head(side_t *s) {
    Py_CLEAR(s->key);
    Py_CLEAR(s->hold);
    Py_CLEAR(s->obj);
    Py_CLEAR(s->path);
    s->raw = NULL;
    s->live = 0;
}

static void side_clear(side_t *s) {
    side_drop_head(s);
    Py_CLEAR(s->it);
    Py_CLEAR(s->run);
}

static int side_advance(side_t *s) {
    side_drop_head(s);
    for (;;) {
        if (s->run) {
            if (s->pos < s->run->n) {
                s->raw = &s->run->recs[s->pos++];
                s->k = s->run->text + s->raw->off;
                s->kn = (Py_ssize_t)s->raw->len;
                s->live = 1;
                return 0;
            }
            Py_CLEAR(s->run);
        }
        PyObject *item = PyIter_Next(s->it);
        if (!item) return PyErr_Occurred() ? -1 : 0;
        if (s->remote) {
            if (Py_IS_TYPE(item, &RawRunType)) {
                s->run = (RawRunObject *)item;
                s->pos = 0;
                continue;
            }
            s->obj = item;
            s->key = remote_key(item, s->nfc, &s->path);
        } else {
            if (checked_tuple(item, 2, "a local item") < 0) {
                Py_DECREF(item);
                return -1;
            }
            PyObject *entry = PyTuple_GET_ITEM(item, 1);
            if (Py_IS_TYPE(entry, &RawRunType)) {
                s->run = (RawRunObject *)Py_NewRef(entry);
                s->pos = 0;
                Py_DECREF(item);
                continue;
            }
            s->key = Py_NewRef(PyTuple_GET_ITEM(item, 0));
            s->obj = Py_NewRef(entry);
            Py_DECREF(item);
        }
        if (!s->key || utf8_of(s->key, &s->hold, &s->k, &s->kn) < 0) return -1;
        s->live = 1;
        return 0;
    }
}

static int side_at(const side_t *s, const char *k, Py_ssize_t kn) {
    return s->live && key_cmp(s->k, s->kn, k, kn) == 0;
}

/* Move the head into *t and read the next one. */
static int side_take(side_t *s, took_t *t) {
    t->key = s->key;
    t->obj = s->obj;
    t->path = s->path;
    s->key = s->obj = s->path = NULL;
    t->raw = s->raw;
    t->run = s->raw ? (RawRunObject *)Py_NewRef(s->run) : NULL;
    return side_advance(s);
}

/* The head's object, made from its record where it has none. New reference. */
static PyObject *side_object(side_t *s) {
    if (!s->raw) return Py_NewRef(s->obj);
    PyObject *path = rr_path(s->run, s->raw);
    PyObject *obj = path ? rr_entry(s->raw, path, s->remote) : NULL;
    Py_XDECREF(path);
    return obj;
}

/* Give a taken record its path and its object (the Entry or RemoteEntry read_folder would have made). */
static int took_object(took_t *t, int remote) {
    if (!t->raw) return 0;
    t->key = rr_path(t->run, t->raw);
    if (!t->key) return -1;
    if (remote) t->path = Py_NewRef(t->key);
    t->obj = rr_entry(t->raw, t->key, remote);
    t->raw = NULL;
    Py_CLEAR(t->run);
    return t->obj ? 0 : -1;
}

/* Whether a taken remote entry's path is the key itself (not another spelling of it). -1 on error. */
static int path_is_key(const took_t *r, const char *k, Py_ssize_t kn) {
    if (r->raw) return 1;   /* a record's path is its key */
    if (r->path == r->key) return 1;
    PyObject *hold = NULL;
    const char *p;
    Py_ssize_t pn;
    if (utf8_of(r->path, &hold, &p, &pn) < 0) return -1;
    int yes = key_cmp(p, pn, k, kn) == 0;
    Py_XDECREF(hold);
    return yes;
}

static int local_is_file(const took_t *l) {
    if (l->raw) return 1;
    PyObject *e = l->obj;
    return PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 4 && same(PyTuple_GET_ITEM(e, 0), FileKind);
}

/* Quiet against a BaseReader row: local (size, mtime, inode) and remote rev as the base has them.
 * 1 quiet, 0 not, -1 error. */
static int quiet_raw_base(const took_t *l, const took_t *r, const brow_t *b, const char *text) {
    PyObject *le = l->obj;
    if (!l->raw && !(PyTuple_Check(le) && PyTuple_GET_SIZE(le) >= 4)) return 0;
    if (!b->file) {   /* a folder: a record is always a file */
        if (l->raw || r->raw || !same(PyTuple_GET_ITEM(le, 0), DirKind)) return 0;
        PyObject *rkind = PyObject_GetAttr(r->obj, StrKind);
        if (!rkind) return -1;
        int yes = same(rkind, DirKind);
        Py_DECREF(rkind);
        return yes;
    }
    if (l->raw) {
        if (l->raw->size != b->size || l->raw->mtime_ns != b->mtime_ns || l->raw->ino > (unsigned long long)LLONG_MAX
                || (long long)l->raw->ino != b->ino)
            return 0;
    } else if (!(same(PyTuple_GET_ITEM(le, 0), FileKind) && long_is(PyTuple_GET_ITEM(le, 1), b->size)
                 && long_is(PyTuple_GET_ITEM(le, 2), b->mtime_ns) && long_is(PyTuple_GET_ITEM(le, 3), b->ino))) {
        return 0;
    }
    if (r->raw) {   /* the rev new_remote() would make */
        char num[64];
        size_t n = format_rev(num, r->raw->mtime_ns, r->raw->size, r->raw->ino);
        return n == b->rrev_n && memcmp(num, text + b->rrev, n) == 0;
    }
    PyObject *rkind = PyObject_GetAttr(r->obj, StrKind);
    if (!rkind) return -1;
    int file = same(rkind, FileKind);
    Py_DECREF(rkind);
    if (!file) return 0;
    PyObject *rev = PyObject_GetAttr(r->obj, StrRev);
    if (!rev) return -1;
    int yes = rev_is(rev, b, text);
    Py_DECREF(rev);
    return yes;
}

/* Quiet against a base row tuple (path, kind, size, mtime_ns, ino, rrev). 1, 0 or -1. */
static int quiet_tuple_base(PyObject *le, PyObject *r, PyObject *b) {
    if (!(PyTuple_Check(le) && PyTuple_GET_SIZE(le) >= 4)) return 0;
    PyObject *rkind = PyObject_GetAttr(r, StrKind);
    if (!rkind) return -1;
    PyObject *bkind = PyTuple_GET_ITEM(b, 1);
    int quiet = 0;
    if (same(bkind, FileKind)) {
        if (same(PyTuple_GET_ITEM(le, 0), FileKind) && same(rkind, FileKind)
                && same(PyTuple_GET_ITEM(le, 1), PyTuple_GET_ITEM(b, 2))
                && same(PyTuple_GET_ITEM(le, 2), PyTuple_GET_ITEM(b, 3))
                && same(PyTuple_GET_ITEM(le, 3), PyTuple_GET_ITEM(b, 4))) {
            PyObject *rev = PyObject_GetAttr(r, StrRev);
            if (!rev) {
                Py_DECREF(rkind);
                return -1;
            }
            quiet = same(rev, PyTuple_GET_ITEM(b, 5));
            Py_DECREF(rev);
        }
    } else {
        quiet = same(PyTuple_GET_ITEM(le, 0), bkind) && same(rkind, bkind);
    }
    Py_DECREF(rkind);
    return PyErr_Occurred() ? -1 : quiet;
}

static PyObject *merge(PyObject *self, PyObject *args) {
    PyObject *local_src, *remote_src, *base_src, *nfc;
    int prune;
    if (!PyArg_ParseTuple(args, "OOOpO", &local_src, &remote_src, &base_src, &prune, &nfc)) return NULL;
    if (!FileKind) {
        PyErr_SetString(PyExc_RuntimeError, "configure() first");
        return NULL;
    }
    side_t ls = {0}, rs = {0};
    took_t l = {0}, r = {0};
    base_t bh = {0}, b = {0};
    PyObject *bit = NULL, *out_local = NULL, *out_remote = NULL, *out_changed = NULL;
    PyObject *result = NULL, *key = NULL, *twins = NULL;
    char *kbuf = NULL;   /* this step's key: a copy, as the heads it came from move on */
    size_t kroom = 0;
    long long local_count = 0, remote_count = 0, base_files = 0;
    int local_files = 0, remote_files = 0;

    ls.nfc = rs.nfc = nfc;
    rs.remote = 1;
    ls.it = PyObject_GetIter(local_src);
    rs.it = ls.it ? PyObject_GetIter(remote_src) : NULL;
    bit = rs.it ? PyObject_GetIter(base_src) : NULL;
    out_local = PyDict_New();
    out_remote = PyList_New(0);
    out_changed = PyList_New(0);
    if (!bit || !out_local || !out_remote || !out_changed) goto fail;
    if (side_advance(&ls) < 0 || side_advance(&rs) < 0) goto fail;
#ifdef HAVE_SQLITE
    BaseReaderObject *br = PyObject_TypeCheck(base_src, &BaseReaderType) ? (BaseReaderObject *)base_src : NULL;
#else
    BaseReaderObject *br = NULL;
#endif
    if (base_advance(bit, br, &bh) < 0) goto fail;

    for (;;) {
        const char *mk = NULL;
        Py_ssize_t kn = 0;
        if (ls.live) {
            mk = ls.k;
            kn = ls.kn;
        }
        if (rs.live && (!mk || key_cmp(rs.k, rs.kn, mk, kn) < 0)) {
            mk = rs.k;
            kn = rs.kn;
        }
        if (bh.live && (!mk || key_cmp(bh.k, bh.kn, mk, kn) < 0)) {
            mk = bh.k;
            kn = bh.kn;
        }
        if (!mk) break;
        if ((size_t)kn + 1 > kroom) {
            size_t room = kroom ? kroom : 256;
            while (room < (size_t)kn + 1) room *= 2;
            char *p = realloc(kbuf, room);
            if (!p) {
                PyErr_NoMemory();
                goto fail;
            }
            kbuf = p;
            kroom = room;
        }
        memcpy(kbuf, mk, (size_t)kn);
        kbuf[kn] = '\0';

        int have_l = 0, have_r = 0;
        if (side_at(&ls, kbuf, kn)) {
            if (side_take(&ls, &l) < 0) goto fail;
            have_l = 1;
            local_count++;
            if (!local_files) local_files = local_is_file(&l);
        }
        if (side_at(&rs, kbuf, kn)) {
            if (side_take(&rs, &r) < 0) goto fail;
            have_r = 1;
            while (side_at(&rs, kbuf, kn)) {
                /* two spellings of one name (NFC and NFD): never quiet, and the views skip the name */
                if (!twins && !(twins = PyList_New(0))) goto fail;
                PyObject *twin = side_object(&rs);
                if (!twin || PyList_Append(twins, twin) != 0) {
                    Py_XDECREF(twin);
                    goto fail;
                }
                Py_DECREF(twin);
                if (side_advance(&rs) < 0) goto fail;
            }
            remote_count += 1 + (twins ? PyList_GET_SIZE(twins) : 0);
            if (!remote_files) {
                int yes = r.raw ? 1 : is_file_remote(r.obj);
                for (Py_ssize_t i = 0; yes == 0 && twins && i < PyList_GET_SIZE(twins); i++)
                    yes = is_file_remote(PyList_GET_ITEM(twins, i));
                if (yes < 0) goto fail;
                remote_files = yes;
            }
        }
        if (bh.live && key_cmp(bh.k, bh.kn, kbuf, kn) == 0) {
            b = bh;   /* a BaseReader row stays valid for one more advance */
            bh = (base_t){0};
            if (base_advance(bit, br, &bh) < 0) goto fail;
            if (b.raw ? b.raw->file : same(PyTuple_GET_ITEM(b.row, 1), FileKind)) base_files++;
        }
        int quiet = 0;
        if (prune && have_l && have_r && b.live && !twins) {
            /* unchanged on both sides since the base: size, mtime and inode here, the rev there */
            quiet = path_is_key(&r, kbuf, kn);
            if (quiet == 1) {
                if (b.raw)
                    quiet = quiet_raw_base(&l, &r, b.raw, b.text);
                else if (took_object(&l, 0) == 0 && took_object(&r, 1) == 0)
                    quiet = quiet_tuple_base(l.obj, r.obj, b.row);
                else
                    quiet = -1;
            }
            if (quiet < 0 || PyErr_Occurred()) goto fail;
        }
        if (!quiet) {
            if (have_l && took_object(&l, 0) != 0) goto fail;
            key = have_l && l.key ? Py_NewRef(l.key) : PyUnicode_DecodeUTF8(kbuf, kn, "surrogatepass");
            if (!key) goto fail;
            if (have_l && PyDict_SetItem(out_local, key, l.obj) != 0) goto fail;
            if (have_r && (took_object(&r, 1) != 0 || PyList_Append(out_remote, r.obj) != 0)) goto fail;
            if (twins) {
                for (Py_ssize_t i = 0; i < PyList_GET_SIZE(twins); i++)
                    if (PyList_Append(out_remote, PyList_GET_ITEM(twins, i)) != 0) goto fail;
            }
            if (b.live && PyList_Append(out_changed, key) != 0) goto fail;
            Py_CLEAR(key);
        }
        took_clear(&l);
        took_clear(&r);
        base_clear(&b);
        Py_CLEAR(twins);
    }
    result = Py_BuildValue("(OOOLLLOO)", out_local, out_remote, out_changed, local_count, remote_count, base_files,
                           local_files ? Py_True : Py_False, remote_files ? Py_True : Py_False);
fail:
    free(kbuf);
    Py_XDECREF(key);
    Py_XDECREF(twins);
    took_clear(&l);
    took_clear(&r);
    base_clear(&b);
    base_clear(&bh);
    side_clear(&ls);
    side_clear(&rs);
    Py_XDECREF(bit);
    Py_XDECREF(out_local); Py_XDECREF(out_remote); Py_XDECREF(out_changed);
    return result;
}

/* ---- set-up ----------------------------------------------------------------------------------------- */

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *entry_type, *remote_type, *slots, *fk, *dk, *rfk, *rdk;
    if (!PyArg_ParseTuple(args, "O!O!O!UUUU", &PyType_Type, &entry_type, &PyType_Type, &remote_type,
                          &PyTuple_Type, &slots, &fk, &dk, &rfk, &rdk))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)entry_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "configure: the entry type must be a tuple type");
        return NULL;
    }
    if (PyTuple_GET_SIZE(slots) != 8) {
        PyErr_SetString(PyExc_TypeError, "configure: RemoteEntry has 8 slots");
        return NULL;
    }
    for (int k = 0; k < 8; k++) {
        PyObject *d = PyTuple_GET_ITEM(slots, k);
        if (!Py_TYPE(d)->tp_descr_set) {
            PyErr_SetString(PyExc_TypeError, "configure: a RemoteEntry slot is not a settable descriptor");
            return NULL;
        }
    }
    Py_XSETREF(EntryType, Py_NewRef(entry_type));
    Py_XSETREF(RemoteType, Py_NewRef(remote_type));
    for (int k = 0; k < 8; k++) Py_XSETREF(RemoteSlots[k], Py_NewRef(PyTuple_GET_ITEM(slots, k)));
    Py_XSETREF(FileKind, Py_NewRef(fk));
    Py_XSETREF(DirKind, Py_NewRef(dk));
    Py_XSETREF(RFileKind, Py_NewRef(rfk));
    Py_XSETREF(RDirKind, Py_NewRef(rdk));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(Entry, RemoteEntry, slots, 'file', 'dir', Kind.FILE, Kind.DIR): the Python side's types"},
    {"read_folder", read_folder, METH_VARARGS,
     "read_folder(abs_dir, disk_prefix, rel_prefix, remote, ahead=None, raw=False) -> (items, temps) | None: "
     "scan._read_folder's list; raw: runs of files as one (first path, RawRun, '', '') item each"},
    {"readahead", new_readahead, METH_VARARGS,
     "readahead(root, limit) -> Readahead: a thread reading the folders below root in a walk's order"},
#ifdef HAVE_SQLITE
    {"base_reader", new_base_reader, METH_VARARGS,
     "base_reader(db_path, pair) -> BaseReader | None: the pair's base rows in path order, read by a thread"},
#endif
    {"merge", merge, METH_VARARGS,
     "merge(local, remote, base, prune, nfc) -> (local, remote, changed, counts...): engine.merge.merge's loop"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&ReadaheadType) < 0 || PyType_Ready(&RawRunType) < 0) return NULL;
#ifdef HAVE_SQLITE
    if (PyType_Ready(&BaseReaderType) < 0) return NULL;
#endif
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    EmptyStr = PyUnicode_FromString("");
    StrPath = PyUnicode_InternFromString("path");
    StrKind = PyUnicode_InternFromString("kind");
    StrRev = PyUnicode_InternFromString("rev");
    if (PyModule_AddObjectRef(m, "RawRun", (PyObject *)&RawRunType) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (!EmptyStr || !StrPath || !StrKind || !StrRev || PyModule_AddIntConstant(m, "VERSION", NATIVE_VERSION) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
