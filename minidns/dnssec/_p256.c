/* P-256 ECDSA signatures for DNSSEC (RFC 6605) with one OpenSSL signing context per key, made
 * once: the signing a random-subdomain flood asks for once per reply. An optional accelerator:
 * minidns signs with `cryptography` when this is not built (see dnssec/keys.py).
 *
 * It calls the libcrypto that Python's own ssl and hashlib modules load (libcrypto.so.3), and
 * declares the few functions it uses itself, so building it needs a C compiler and Python's
 * headers, not OpenSSL's. The GIL is held throughout: one key's context is never used by two
 * threads at once. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
extern EVP_PKEY *d2i_AutoPrivateKey(EVP_PKEY **a, const unsigned char **pp, long length);
extern void EVP_PKEY_free(EVP_PKEY *pkey);
extern EVP_PKEY_CTX *EVP_PKEY_CTX_new(EVP_PKEY *pkey, void *engine);
extern void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
extern int EVP_PKEY_sign_init(EVP_PKEY_CTX *ctx);
extern int EVP_PKEY_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs, size_t tbslen);
extern unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);

typedef struct {
    PyObject_HEAD
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *ctx;
} Signer;

static void Signer_dealloc(Signer *self) {
    if (self->ctx) EVP_PKEY_CTX_free(self->ctx);
    if (self->pkey) EVP_PKEY_free(self->pkey);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Signer_init(Signer *self, PyObject *args, PyObject *kwds) {
    Py_buffer der;
    if (!PyArg_ParseTuple(args, "y*", &der)) return -1;
    if (self->ctx || self->pkey) {
        PyBuffer_Release(&der);
        PyErr_SetString(PyExc_TypeError, "already initialised");
        return -1;
    }
    const unsigned char *p = der.buf;
    self->pkey = d2i_AutoPrivateKey(NULL, &p, (long)der.len);
    PyBuffer_Release(&der);
    if (!self->pkey) {
        PyErr_SetString(PyExc_ValueError, "not a DER private key");
        return -1;
    }
    self->ctx = EVP_PKEY_CTX_new(self->pkey, NULL);
    if (!self->ctx || EVP_PKEY_sign_init(self->ctx) <= 0) {
        PyErr_SetString(PyExc_ValueError, "cannot sign with this key");
        return -1;
    }
    return 0;
}

/* Copy a DER INTEGER's value (at most 33 octets, a leading zero when its high bit is set) into
 * 32 octets, right-aligned (RFC 6605 §4). */
static int put_integer(const unsigned char **p, const unsigned char *end, unsigned char out[32]) {
    if (end - *p < 2 || (*p)[0] != 0x02) return 0;
    size_t len = (*p)[1];
    const unsigned char *v = *p + 2;
    if (len == 0 || len > 33 || (size_t)(end - v) < len) return 0;
    *p = v + len;
    if (len == 33) {
        if (v[0] != 0) return 0;
        v++;
        len = 32;
    }
    memset(out, 0, 32 - len);
    memcpy(out + 32 - len, v, len);
    return 1;
}

static PyObject *Signer_sign(Signer *self, PyObject *data) {
    char *buf;
    Py_ssize_t n;
    unsigned char digest[32], der[80], raw[64];
    size_t derlen = sizeof der;
    if (!self->ctx) {
        PyErr_SetString(PyExc_ValueError, "no key");
        return NULL;
    }
    if (PyBytes_AsStringAndSize(data, &buf, &n) < 0) return NULL;
    SHA256((const unsigned char *)buf, (size_t)n, digest);
    if (EVP_PKEY_sign(self->ctx, der, &derlen, digest, sizeof digest) <= 0 || derlen < 8 || derlen > sizeof der) {
        PyErr_SetString(PyExc_RuntimeError, "P-256 signing failed");
        return NULL;
    }
    /* SEQUENCE { INTEGER r, INTEGER s }: at most 72 octets, so every length is one octet. */
    const unsigned char *p = der + 2, *end = der + derlen;
    if (der[0] != 0x30 || der[1] != derlen - 2 || !put_integer(&p, end, raw) || !put_integer(&p, end, raw + 32) || p != end) {
        PyErr_SetString(PyExc_RuntimeError, "P-256 signing gave an unexpected encoding");
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)raw, sizeof raw);
}

static PyMethodDef Signer_methods[] = {
    {"sign", (PyCFunction)Signer_sign, METH_O,
     "sign(data) -> the 64-octet r||s signature of ECDSA P-256 with SHA-256 over data (RFC 6605)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SignerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "minidns.dnssec._p256.Signer",
    .tp_doc = "Signer(der): a P-256 private key (PKCS#8 DER) with its OpenSSL signing context.",
    .tp_basicsize = sizeof(Signer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Signer_init,
    .tp_dealloc = (destructor)Signer_dealloc,
    .tp_methods = Signer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "minidns.dnssec._p256", "P-256 DNSSEC signatures with a reused OpenSSL context.", -1, NULL,
};

PyMODINIT_FUNC PyInit__p256(void) {
    if (PyType_Ready(&SignerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&SignerType);
    if (PyModule_AddObject(m, "Signer", (PyObject *)&SignerType) < 0) {
        Py_DECREF(&SignerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
