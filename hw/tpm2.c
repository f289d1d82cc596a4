/* SPDX-License-Identifier: MIT */
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hw/tpm2.h"
#include "hw/tpm2-names.h"
#include "util/parse.h"
#include "util/util.h"

#define BLOB_VERSION 1u

/* Which step failed decides what a TPM error means: a refusal while loading or using the
 * sealed object is about the blob (another TPM, changed PCRs, altered bytes); the same codes
 * while creating the primary or a session mean the TPM itself is unhappy. */
typedef enum step {
        STEP_SETUP,
        STEP_BLOB,
} step_t;

/* The response code of the failure the current call returns (tpm2_last_rc()). */
static TSS2_RC last_rc;

uint32_t tpm2_last_rc(void) {
        return last_rc;
}

void tpm2_last_rc_clear(void) {
        last_rc = 0;
}

static int rc_classify(TSS2_RC rc, step_t step) {
        TSS2_RC layer = rc & TSS2_RC_LAYER_MASK, base = rc & ~TSS2_RC_LAYER_MASK;
        if (layer == TSS2_TCTI_RC_LAYER)
                return base == TSS2_BASE_RC_NO_CONNECTION || base == TSS2_BASE_RC_IO_ERROR ? -ENODEV : -EIO;
        if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER) {
                /* ESAPI, SAPI, marshalling, resource manager */
                if (base == TSS2_BASE_RC_MEMORY)
                        return -ENOMEM;
                if (base == TSS2_BASE_RC_NO_CONNECTION || base == TSS2_BASE_RC_IO_ERROR)
                        return -ENODEV;
                return -EIO;
        }
        /* A response code from the TPM (or passed through by a resource manager). */
        if (base & TPM2_RC_FMT1) {
                TPM2_RC code = base & (TPM2_RC_FMT1 | 0x3f);
                if (step == STEP_BLOB || code == TPM2_RC_POLICY_FAIL || code == TPM2_RC_INTEGRITY)
                        return -EKEYREJECTED;
                return -EIO;
        }
        if ((base & TPM2_RC_WARN) == TPM2_RC_WARN) {
                TPM2_RC code = base & (TPM2_RC_WARN | 0x7f);
                if (code == TPM2_RC_RETRY || code == TPM2_RC_YIELDED || code == TPM2_RC_TESTING ||
                    code == TPM2_RC_NV_RATE || code == TPM2_RC_LOCKOUT)
                        return -EBUSY;
                return -EIO;
        }
        if (base == TPM2_RC_PCR_CHANGED || base == TPM2_RC_POLICY || base == TPM2_RC_PCR ||
            (step == STEP_BLOB && base == TPM2_RC_SENSITIVE))
                return -EKEYREJECTED;
        return -EIO;
}

/* Kept as the call's tpm2_last_rc(), except when the TPM does not answer at all (-ENODEV, said
 * in words of its own): an answer from the TPM or from the software stack under us. */
static int rc_to_errno(TSS2_RC rc, step_t step) {
        if (rc == TSS2_RC_SUCCESS)
                return 0;
        int r = rc_classify(rc, step);
        if (r != -ENODEV)
                last_rc = rc;
        return r;
}

static const TPMI_ALG_HASH bank_algs[_PCR_BANK_MAX] = {
        [PCR_BANK_SHA1] = TPM2_ALG_SHA1,
        [PCR_BANK_SHA256] = TPM2_ALG_SHA256,
        [PCR_BANK_SHA384] = TPM2_ALG_SHA384,
        [PCR_BANK_SHA512] = TPM2_ALG_SHA512,
};

/* The configuration's PCR list (util/parse.h) as a TPM selection; "" or NULL -> count 0. */
static int pcrs_parse(const char *s, TPML_PCR_SELECTION *ret) {
        pcr_list_t l;
        int r = pcr_list_parse(s ?: "", &l, NULL);
        if (r < 0)
                return r;
        TPML_PCR_SELECTION sel = { .count = (UINT32) l.n };
        for (size_t i = 0; i < l.n; i++) {
                TPMS_PCR_SELECTION *ps = &sel.pcrSelections[i];
                ps->hash = bank_algs[l.sel[i].bank];
                ps->sizeofSelect = 3;
                for (unsigned b = 0; b < 3; b++)
                        ps->pcrSelect[b] = (uint8_t) (l.sel[i].mask >> (8 * b));
        }
        *ret = sel;
        return 0;
}

/* tpm2-tss is loaded on first use and stays (systemd's dlopen_tpm2()): this runs only in
 * short-lived processes (the agent's crypto children, mscectl, tests), never in the daemon.
 * Missing libraries mean the same as a build without TPM support: -EOPNOTSUPP. Loaded in
 * steps, cheapest first: mu (libc only) for the blob, tctildr to reach the TPM, and esys only
 * once a TPM answers, because esys pulls in libcrypto.so.3: a process on a gateway without a
 * TPM never maps it. */
typedef struct tss2 {
        void *mu_dl, *tctildr_dl, *esys_dl;
        typeof(&Tss2_MU_TPM2B_PUBLIC_Marshal) Tss2_MU_TPM2B_PUBLIC_Marshal;
        typeof(&Tss2_MU_TPM2B_PUBLIC_Unmarshal) Tss2_MU_TPM2B_PUBLIC_Unmarshal;
        typeof(&Tss2_MU_TPM2B_PRIVATE_Marshal) Tss2_MU_TPM2B_PRIVATE_Marshal;
        typeof(&Tss2_MU_TPM2B_PRIVATE_Unmarshal) Tss2_MU_TPM2B_PRIVATE_Unmarshal;
        typeof(&Tss2_MU_TPML_PCR_SELECTION_Marshal) Tss2_MU_TPML_PCR_SELECTION_Marshal;
        typeof(&Tss2_MU_TPML_PCR_SELECTION_Unmarshal) Tss2_MU_TPML_PCR_SELECTION_Unmarshal;
        typeof(&Tss2_TctiLdr_Initialize) Tss2_TctiLdr_Initialize;
        typeof(&Tss2_TctiLdr_Finalize) Tss2_TctiLdr_Finalize;
        typeof(&Esys_Initialize) Esys_Initialize;
        typeof(&Esys_Finalize) Esys_Finalize;
        typeof(&Esys_Free) Esys_Free;
        typeof(&Esys_FlushContext) Esys_FlushContext;
        typeof(&Esys_GetSysContext) Esys_GetSysContext;
        typeof(&Tss2_Sys_FlushContext) Tss2_Sys_FlushContext; /* libtss2-sys, found through libesys */
        typeof(&Esys_GetCapability) Esys_GetCapability;
        typeof(&Esys_CreatePrimary) Esys_CreatePrimary;
        typeof(&Esys_StartAuthSession) Esys_StartAuthSession;
        typeof(&Esys_TRSess_SetAttributes) Esys_TRSess_SetAttributes;
        typeof(&Esys_PolicyPCR) Esys_PolicyPCR;
        typeof(&Esys_PolicyGetDigest) Esys_PolicyGetDigest;
        typeof(&Esys_Create) Esys_Create;
        typeof(&Esys_Load) Esys_Load;
        typeof(&Esys_Unseal) Esys_Unseal;
} tss2_t;

#define DLSYM(t, dl, sym)                                                \
        ({                                                               \
                (t)->sym = (typeof((t)->sym)) dlsym((t)->dl, #sym);      \
                (t)->sym != NULL;                                        \
        })

static tss2_t tss;

/* A library without every symbol is unloaded again: the next call fails the same way. */
static int tss2_unload(void **dl) {
        dlclose(*dl);
        *dl = NULL;
        return -EOPNOTSUPP;
}

/* soname into *dl, once: 1 when just opened (its symbols to resolve), 0 when it was already,
 * -EOPNOTSUPP when it cannot be. */
static int tss2_open(void **dl, const char *soname) {
        if (*dl)
                return 0;
        *dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        return *dl ? 1 : -EOPNOTSUPP;
}

static int tss2_load_mu(tss2_t *t) {
        int r = tss2_open(&t->mu_dl, "libtss2-mu.so.0");
        if (r > 0 &&
            (!DLSYM(t, mu_dl, Tss2_MU_TPM2B_PUBLIC_Marshal) || !DLSYM(t, mu_dl, Tss2_MU_TPM2B_PUBLIC_Unmarshal) ||
             !DLSYM(t, mu_dl, Tss2_MU_TPM2B_PRIVATE_Marshal) || !DLSYM(t, mu_dl, Tss2_MU_TPM2B_PRIVATE_Unmarshal) ||
             !DLSYM(t, mu_dl, Tss2_MU_TPML_PCR_SELECTION_Marshal) ||
             !DLSYM(t, mu_dl, Tss2_MU_TPML_PCR_SELECTION_Unmarshal)))
                return tss2_unload(&t->mu_dl);
        return r < 0 ? r : 0;
}

static int tss2_load_tctildr(tss2_t *t) {
        int r = tss2_open(&t->tctildr_dl, "libtss2-tctildr.so.0");
        if (r > 0 && (!DLSYM(t, tctildr_dl, Tss2_TctiLdr_Initialize) || !DLSYM(t, tctildr_dl, Tss2_TctiLdr_Finalize)))
                return tss2_unload(&t->tctildr_dl);
        return r < 0 ? r : 0;
}

static int tss2_load_esys(tss2_t *t) {
        int r = tss2_open(&t->esys_dl, "libtss2-esys.so.0");
        if (r > 0 &&
            (!DLSYM(t, esys_dl, Esys_Initialize) || !DLSYM(t, esys_dl, Esys_Finalize) ||
             !DLSYM(t, esys_dl, Esys_Free) || !DLSYM(t, esys_dl, Esys_FlushContext) ||
             !DLSYM(t, esys_dl, Esys_GetSysContext) || !DLSYM(t, esys_dl, Tss2_Sys_FlushContext) ||
             !DLSYM(t, esys_dl, Esys_GetCapability) || !DLSYM(t, esys_dl, Esys_CreatePrimary) ||
             !DLSYM(t, esys_dl, Esys_StartAuthSession) || !DLSYM(t, esys_dl, Esys_TRSess_SetAttributes) ||
             !DLSYM(t, esys_dl, Esys_PolicyPCR) || !DLSYM(t, esys_dl, Esys_PolicyGetDigest) ||
             !DLSYM(t, esys_dl, Esys_Create) || !DLSYM(t, esys_dl, Esys_Load) || !DLSYM(t, esys_dl, Esys_Unseal)))
                return tss2_unload(&t->esys_dl);
        return r < 0 ? r : 0;
}

/* What creating an object returns beside it, unused here: the creation data, its hash and ticket;
 * and the creation's fixed inputs (no outside info, no creation PCRs). */
typedef struct creation {
        TPM2B_CREATION_DATA *data;
        TPM2B_DIGEST *hash;
        TPMT_TK_CREATION *ticket;
} creation_t;
static const TPM2B_DATA creation_outside = { 0 };
static const TPML_PCR_SELECTION creation_pcr = { 0 };

static void creation_free(creation_t *cr) {
        tss.Esys_Free(cr->data);
        tss.Esys_Free(cr->hash);
        tss.Esys_Free(cr->ticket);
}

typedef struct tpm2_ctx {
        TSS2_TCTI_CONTEXT *tcti;
        ESYS_CONTEXT *esys;
        ESYS_TR primary, object, session;
} tpm2_ctx_t;

#define TPM2_CTX_NULL \
        ((tpm2_ctx_t) { .primary = ESYS_TR_NONE, .object = ESYS_TR_NONE, .session = ESYS_TR_NONE })

static void flush(tpm2_ctx_t *c, ESYS_TR *h) {
        if (*h != ESYS_TR_NONE)
                (void) tss.Esys_FlushContext(c->esys, *h);
        *h = ESYS_TR_NONE;
}

/* Every path ends here: TPM handles flushed, contexts finalized. */
static void tpm2_ctx_done(tpm2_ctx_t *c) {
        if (c->esys) {
                flush(c, &c->session);
                flush(c, &c->object);
                flush(c, &c->primary);
                tss.Esys_Finalize(&c->esys);
        }
        if (c->tcti)
                tss.Tss2_TctiLdr_Finalize(&c->tcti);
}

/* A device: TCTI's node opened and closed again, for why the TCTI could not open it, which tss2
 * only logs: no node is no TPM (-ENODEV, and tss2 logs nothing), but a TPM that is there and not
 * ours to open (-EACCES) or held by another process (/dev/tpmN, one opener at a time: -EBUSY) is
 * not, or method auto would seal without it (keys/seal.h). */
static int device_check(const char *tcti) {
        const char *node = tpm2_tcti_device(tcti);
        if (!node)
                return 0;
        int fd = open(node, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
                close(fd);
                return 0;
        }
        switch (errno) {
        case ENOENT:
        case ENOTDIR:
        case ENODEV:
        case ENXIO:
                return -ENODEV;
        case EACCES:
        case EPERM:
                return -EACCES;
        case EBUSY:
                return -EBUSY;
        default:
                return -EIO;
        }
}

/* c starts as TPM2_CTX_NULL (its libmu may already be loaded). */
static int tpm2_ctx_open(const char *tcti, tpm2_ctx_t *c) {
        if (!tcti || !*tcti)
                tcti = TPM2_TCTI_DEFAULT;
        int r = device_check(tcti);
        if (r < 0)
                return r;
        r = tss2_load_mu(&tss);
        if (r < 0)
                return r;
        r = tss2_load_tctildr(&tss);
        if (r < 0)
                return r;
        TSS2_RC rc = tss.Tss2_TctiLdr_Initialize(tcti, &c->tcti);
        if (rc != TSS2_RC_SUCCESS) {
                c->tcti = NULL;
                return rc == TSS2_TCTI_RC_MEMORY ? -ENOMEM : -ENODEV;
        }
        /* Only now esys, and with it libcrypto (which then stays, see above): a gateway
         * whose TPM is absent or not ours to open never maps it. */
        r = tss2_load_esys(&tss);
        if (r < 0)
                return r;
        rc = tss.Esys_Initialize(&c->esys, c->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                c->esys = NULL;
                return rc_to_errno(rc, STEP_SETUP) == -ENOMEM ? -ENOMEM : -ENODEV;
        }
        return 0;
}

/* The storage primary key from the standard ECC P-256 SRK template (TCG Provisioning
 * Guidance): same owner seed and template, same key, so nothing needs to persist. */
static int create_primary(tpm2_ctx_t *c) {
        const TPM2B_SENSITIVE_CREATE sens = { 0 };
        const TPM2B_PUBLIC tmpl = {
                .publicArea = {
                        .type = TPM2_ALG_ECC,
                        .nameAlg = TPM2_ALG_SHA256,
                        .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                                            TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                            TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                            TPMA_OBJECT_NODA,
                        .parameters.eccDetail = {
                                .symmetric = {
                                        .algorithm = TPM2_ALG_AES,
                                        .keyBits.aes = 128,
                                        .mode.aes = TPM2_ALG_CFB,
                                },
                                .scheme.scheme = TPM2_ALG_NULL,
                                .curveID = TPM2_ECC_NIST_P256,
                                .kdf.scheme = TPM2_ALG_NULL,
                        },
                },
        };
        TPM2B_PUBLIC *out_public = NULL;
        creation_t cr = {};

        TSS2_RC rc = tss.Esys_CreatePrimary(c->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                             ESYS_TR_NONE, &sens, &tmpl, &creation_outside, &creation_pcr, &c->primary,
                                             &out_public, &cr.data, &cr.hash, &cr.ticket);
        tss.Esys_Free(out_public);
        creation_free(&cr);
        if (rc != TSS2_RC_SUCCESS)
                c->primary = ESYS_TR_NONE;
        return rc_to_errno(rc, STEP_SETUP);
}

/* Without a resource manager, what a process loaded stays in the TPM after it ends: a sealing
 * child killed on its timeout (agent/sealing.c) leaves its primary, object and session behind,
 * and with 3 object slots (swtpm, many TPMs) a few such kills make every later seal fail with
 * TPM_RC_OBJECT_MEMORY. A resource manager flushes a client's handles when it goes; on a direct
 * TCTI the agent is the TPM's only user (the kernel lets one process at a time open /dev/tpmN,
 * a simulator serves one connection at a time, and a process flushes its own handles before it
 * lets go), so it does the same here, before each seal or unseal: every transient object, loaded
 * and saved session. Best effort: what cannot be listed or flushed is left for the operation to
 * fail on. */
static void flush_leftovers(tpm2_ctx_t *c, const char *tcti) {
        if (tpm2_tcti_is_resource_manager(tcti))
                return;
        TSS2_SYS_CONTEXT *sys = NULL;
        if (tss.Esys_GetSysContext(c->esys, &sys) != TSS2_RC_SUCCESS || !sys)
                return;
        static const TPM2_HANDLE firsts[] = { TPM2_TRANSIENT_FIRST, TPM2_LOADED_SESSION_FIRST, TPM2_ACTIVE_SESSION_FIRST };
        for (size_t i = 0; i < ELEMENTSOF(firsts); i++) {
                TPMI_YES_NO more;
                TPMS_CAPABILITY_DATA *data = NULL;
                if (tss.Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, firsts[i],
                                           TPM2_MAX_CAP_HANDLES, &more, &data) != TSS2_RC_SUCCESS)
                        continue;
                /* the union holds what the answer says it holds: another capability is no list */
                const TPML_HANDLE none = { 0 };
                const TPML_HANDLE *l = data->capability == TPM2_CAP_HANDLES ? &data->data.handles : &none;
                /* as listed: a saved session may be listed with its HMAC session handle */
                for (size_t j = 0; j < l->count && j < TPM2_MAX_CAP_HANDLES; j++)
                        (void) tss.Tss2_Sys_FlushContext(sys, l->handle[j]);
                tss.Esys_Free(data);
        }
}

/* The TPM on tcti and the primary key every seal and unseal works under. */
static int tpm2_ctx_open_primary(const char *tcti, tpm2_ctx_t *c) {
        int r = tpm2_ctx_open(tcti, c);
        if (r < 0)
                return r;
        flush_leftovers(c, tcti);
        return create_primary(c);
}

/* A session salted with the primary (the salt travels encrypted to it, so the session key is
 * unknown to anyone on the bus), AES-128-CFB parameter encryption in the direction asked. */
static int start_session(tpm2_ctx_t *c, TPM2_SE type, TPMA_SESSION attrs) {
        const TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
        TSS2_RC rc = tss.Esys_StartAuthSession(c->esys, c->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                                ESYS_TR_NONE, NULL, type, &sym, TPM2_ALG_SHA256, &c->session);
        if (rc != TSS2_RC_SUCCESS) {
                c->session = ESYS_TR_NONE;
                return rc_to_errno(rc, STEP_SETUP);
        }
        rc = tss.Esys_TRSess_SetAttributes(c->esys, c->session, attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
        return rc_to_errno(rc, STEP_SETUP);
}

/* PolicyPCR over the current values, computed by the TPM in a trial session. */
static int policy_digest(tpm2_ctx_t *c, const TPML_PCR_SELECTION *sel, TPM2B_DIGEST *ret) {
        const TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
        const TPM2B_DIGEST none = { 0 };
        ESYS_TR trial = ESYS_TR_NONE;
        TPM2B_DIGEST *digest = NULL;

        TSS2_RC rc = tss.Esys_StartAuthSession(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                                ESYS_TR_NONE, NULL, TPM2_SE_TRIAL, &sym, TPM2_ALG_SHA256, &trial);
        if (rc != TSS2_RC_SUCCESS)
                return rc_to_errno(rc, STEP_SETUP);
        rc = tss.Esys_PolicyPCR(c->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &none, sel);
        if (rc == TSS2_RC_SUCCESS)
                rc = tss.Esys_PolicyGetDigest(c->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        flush(c, &trial);
        if (rc != TSS2_RC_SUCCESS)
                return rc_to_errno(rc, STEP_SETUP);
        *ret = *digest;
        tss.Esys_Free(digest);
        return 0;
}

/* -ENXIO unless the TPM has every PCR of sel active: PolicyPCR skips a PCR of a bank that is not
 * allocated (many firmwares drop sha1), so the object would be bound to nothing. */
static int pcrs_active(tpm2_ctx_t *c, const TPML_PCR_SELECTION *sel) {
        TPMI_YES_NO more;
        TPMS_CAPABILITY_DATA *data = NULL;
        TSS2_RC rc = tss.Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1,
                                            &more, &data);
        if (rc != TSS2_RC_SUCCESS)
                return rc_to_errno(rc, STEP_SETUP);
        /* an answer about another capability (a TPM or proxy gone wrong) is no list of banks */
        if (data->capability != TPM2_CAP_PCRS || data->data.assignedPCR.count > TPM2_NUM_PCR_BANKS) {
                tss.Esys_Free(data);
                return -EIO;
        }
        const TPML_PCR_SELECTION *have = &data->data.assignedPCR;
        int r = 0;
        for (size_t i = 0; i < sel->count; i++) {
                const TPMS_PCR_SELECTION *want = &sel->pcrSelections[i], *bank = NULL;
                for (size_t j = 0; j < have->count; j++)
                        if (have->pcrSelections[j].hash == want->hash)
                                bank = &have->pcrSelections[j];
                for (unsigned b = 0; b < want->sizeofSelect; b++)
                        if (want->pcrSelect[b] & ~(bank && b < bank->sizeofSelect ? bank->pcrSelect[b] : 0))
                                r = -ENXIO;
        }
        tss.Esys_Free(data);
        return r;
}

static int probe(tpm2_ctx_t *c) {
        TPMI_YES_NO more;
        TPMS_CAPABILITY_DATA *data = NULL;
        TSS2_RC rc = tss.Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                            TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 1, &more, &data);
        tss.Esys_Free(data);
        return rc_to_errno(rc, STEP_SETUP);
}

int tpm2_probe(const char *tcti) {
        last_rc = 0;
        _cleanup_(tpm2_ctx_done) tpm2_ctx_t c = TPM2_CTX_NULL;
        int r = tpm2_ctx_open(tcti, &c);
        return r < 0 ? r : probe(&c);
}

int tpm2_probe_pcrs(const char *tcti, const char *pcrs, int *ret_pcrs) {
        last_rc = 0;
        TPML_PCR_SELECTION sel;
        int p = pcrs_parse(pcrs, &sel);
        _cleanup_(tpm2_ctx_done) tpm2_ctx_t c = TPM2_CTX_NULL;
        int r = tpm2_ctx_open(tcti, &c);
        if (r < 0 || (r = probe(&c)) < 0)
                return r;
        *ret_pcrs = p < 0 || sel.count == 0 ? p : pcrs_active(&c, &sel);
        return 0;
}

static int blob_marshal(const tss2_t *t, const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv,
                        const TPML_PCR_SELECTION *sel, uint8_t **ret, size_t *ret_len) {
        size_t size = 1 + sizeof *pub + sizeof *priv + sizeof *sel, off = 0;
        _cleanup_free_ uint8_t *buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        buf[off++] = BLOB_VERSION;
        TSS2_RC rc = t->Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, size, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = t->Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, size, &off);
        if (rc == TSS2_RC_SUCCESS)
                rc = t->Tss2_MU_TPML_PCR_SELECTION_Marshal(sel, buf, size, &off);
        if (rc != TSS2_RC_SUCCESS)
                return rc_to_errno(rc, STEP_SETUP) == -ENOMEM ? -ENOMEM : -EIO;
        *ret = TAKE_PTR(buf);
        *ret_len = off;
        return 0;
}

static int blob_unmarshal(const tss2_t *t, const uint8_t *blob, size_t len, TPM2B_PUBLIC *pub,
                          TPM2B_PRIVATE *priv, TPML_PCR_SELECTION *sel) {
        size_t off = 1;
        *pub = (TPM2B_PUBLIC) { 0 };
        *priv = (TPM2B_PRIVATE) { 0 };
        *sel = (TPML_PCR_SELECTION) { 0 };
        if (!blob || len < 1 || blob[0] != BLOB_VERSION)
                return -EBADMSG;
        if (t->Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, len, &off, pub) != TSS2_RC_SUCCESS ||
            t->Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, len, &off, priv) != TSS2_RC_SUCCESS ||
            t->Tss2_MU_TPML_PCR_SELECTION_Unmarshal(blob, len, &off, sel) != TSS2_RC_SUCCESS || off != len)
                return -EBADMSG;
        /* Only what tpm2_seal() makes: anything else is not ours, whatever the TPM would say. */
        const TPMT_PUBLIC *p = &pub->publicArea;
        TPMA_OBJECT need = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;
        if (p->type != TPM2_ALG_KEYEDHASH || p->nameAlg != TPM2_ALG_SHA256 ||
            (p->objectAttributes & need) != need ||
            (p->objectAttributes & (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_DECRYPT)) != 0 ||
            p->parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL || sel->count > ELEMENTSOF(bank_algs))
                return -EBADMSG;
        for (size_t i = 0; i < sel->count; i++)
                if (sel->pcrSelections[i].sizeofSelect != 3)
                        return -EBADMSG;
        return 0;
}

int tpm2_seal(const char *tcti, const char *pcrs, const uint8_t *secret, size_t len, uint8_t **ret_blob,
              size_t *ret_blob_len) {
        last_rc = 0;
        if (!secret || len == 0 || len > TPM2_SECRET_MAX || !ret_blob || !ret_blob_len)
                return -EINVAL;
        TPML_PCR_SELECTION sel;
        int r = pcrs_parse(pcrs, &sel);
        if (r < 0)
                return r;

        _cleanup_(tpm2_ctx_done) tpm2_ctx_t c = TPM2_CTX_NULL;
        r = tpm2_ctx_open_primary(tcti, &c);
        if (r < 0)
                return r;

        TPM2B_PUBLIC tmpl = {
                .publicArea = {
                        .type = TPM2_ALG_KEYEDHASH,
                        .nameAlg = TPM2_ALG_SHA256,
                        /* noDA: there is no auth value to guess, and a lockout would hit every
                         * other user of the TPM. */
                        .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA,
                        .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
                },
        };
        if (sel.count > 0) {
                r = pcrs_active(&c, &sel);
                if (r == 0)
                        r = policy_digest(&c, &sel, &tmpl.publicArea.authPolicy);
                if (r < 0)
                        return r;
        } else
                tmpl.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;

        r = start_session(&c, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT);
        if (r < 0)
                return r;

        TPM2B_SENSITIVE_CREATE sens = { 0 };
        sens.sensitive.data.size = (UINT16) len;
        memcpy(sens.sensitive.data.buffer, secret, len);
        TPM2B_PRIVATE *priv = NULL;
        TPM2B_PUBLIC *pub = NULL;
        creation_t cr = {};
        TSS2_RC rc = tss.Esys_Create(c.esys, c.primary, c.session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
                                     &creation_outside, &creation_pcr, &priv, &pub, &cr.data, &cr.hash, &cr.ticket);
        erase(&sens, sizeof sens);
        creation_free(&cr);
        if (rc == TSS2_RC_SUCCESS)
                r = blob_marshal(&tss, pub, priv, &sel, ret_blob, ret_blob_len);
        else
                r = rc_to_errno(rc, STEP_SETUP);
        tss.Esys_Free(priv);
        tss.Esys_Free(pub);
        return r;
}

int tpm2_unseal(const char *tcti, const uint8_t *blob, size_t blob_len, uint8_t *out, size_t out_size,
                size_t *ret_len) {
        last_rc = 0;
        if (!out || !ret_len)
                return -EINVAL;
        _cleanup_(tpm2_ctx_done) tpm2_ctx_t c = TPM2_CTX_NULL;
        int r = tss2_load_mu(&tss);
        if (r < 0)
                return r;
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
        TPML_PCR_SELECTION sel;
        r = blob_unmarshal(&tss, blob, blob_len, &pub, &priv, &sel);
        if (r < 0)
                return r;

        r = tpm2_ctx_open_primary(tcti, &c);
        if (r < 0)
                return r;

        TSS2_RC rc = tss.Esys_Load(c.esys, c.primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
                                   &c.object);
        if (rc != TSS2_RC_SUCCESS) {
                c.object = ESYS_TR_NONE;
                return rc_to_errno(rc, STEP_BLOB);
        }
        /* The primary is not needed once the object is loaded, but it salts the session. */
        r = start_session(&c, sel.count > 0 ? TPM2_SE_POLICY : TPM2_SE_HMAC, TPMA_SESSION_ENCRYPT);
        if (r < 0)
                return r;
        flush(&c, &c.primary);
        if (sel.count > 0) {
                const TPM2B_DIGEST none = { 0 };
                rc = tss.Esys_PolicyPCR(c.esys, c.session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &none, &sel);
                if (rc != TSS2_RC_SUCCESS)
                        return rc_to_errno(rc, STEP_BLOB);
        }

        TPM2B_SENSITIVE_DATA *data = NULL;
        rc = tss.Esys_Unseal(c.esys, c.object, c.session, ESYS_TR_NONE, ESYS_TR_NONE, &data);
        if (rc != TSS2_RC_SUCCESS)
                return rc_to_errno(rc, STEP_BLOB);
        if (data->size > out_size)
                r = -ENOBUFS;
        else {
                memcpy(out, data->buffer, data->size);
                *ret_len = data->size;
                r = 0;
        }
        erase(data, sizeof *data);
        tss.Esys_Free(data);
        return r;
}
