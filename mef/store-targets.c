/* SPDX-License-Identifier: MIT */
/* The store's targets (IN-CSE, MAF...): the peers that fetch nodes' credentials. */
#include "mef/store-internal.h"
#include "proto/tls.h"

#include <time.h>

static int target_from_row(db_stmt_t *st, int c, void *out) {
        store_target_t *t = out;
        memset(t, 0, sizeof *t);
        TRY(store_column_texts(st, c, 3, TEXT_BUF(t->id), TEXT_BUF(t->psk_id), TEXT_BUF(t->cert_fp)));
        t->created = db_column_int64(st, c + 3);
        return 0;
}

const row_type_t store_target_row = {
        target_from_row, sizeof(store_target_t), offsetof(store_target_t, id), "tpsk", 4,
};

static int target_insert(mef_store_t *s, const store_target_t *t, const uint8_t *psk, size_t psk_len) {
        uint8_t blob[SEALED_MAX];
        size_t blob_len;
        TRY(store_key_seal(s, "tpsk", t->id, psk, psk_len, blob, &blob_len)); /* cert mode: none */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "INSERT INTO targets (" TARGET_COLUMNS ", psk_enc) SELECT ?1, ?2, ?3, ?4, ?5 "
                    "WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE kpm_id = ?2 OR cert_fp = ?3)",
                    &st));
        TRY(db_bind_text(st, 1, t->id, -1));
        TRY(bind_text_or_null(st, 2, t->psk_id));
        TRY(bind_text_or_null(st, 3, t->cert_fp));
        TRY(db_bind_int64(st, 4, t->created > 0 ? t->created : (int64_t) time(NULL)));
        TRY(store_bind_sealed(st, 5, blob, blob_len));
        return store_insert_one(s, st);
}

int store_target_add(mef_store_t *s, const store_target_t *t, const uint8_t *psk, size_t psk_len) {
        if (!s || !t || !id_is_valid(t->id, MSG_ID_MAX))
                return -EINVAL;
        bool is_psk = t->psk_id[0] != 0;
        if (is_psk && (!id_is_valid(t->psk_id, TLS_PSK_ID_MAX) || t->cert_fp[0] || !key_len_valid(psk, psk_len)))
                return -EINVAL;
        if (!is_psk && (!store_fp_is_valid(t->cert_fp) || psk_len != 0))
                return -EINVAL;

        bool own;
        TRY(store_identity_begin(s, &own)); /* before the checks */
        return store_identity_end(s, own, target_insert(s, t, psk, psk_len));
}

int store_target_by_psk_id(mef_store_t *s, const char *psk_id, store_target_t *ret, uint8_t psk[MSG_KEY_MAX],
                           size_t *ret_psk_len) {
        if (!psk != !ret_psk_len)
                return -EINVAL;
        return store_select_one(s, &store_target_row, "SELECT " TARGET_COLUMNS ", psk_enc FROM targets WHERE psk_id = ?1",
                                psk_id, ret, psk, ret_psk_len);
}

int store_target_by_cert(mef_store_t *s, const char *fp, store_target_t *ret) {
        return store_select_one(s, &store_target_row, "SELECT " TARGET_COLUMNS " FROM targets WHERE cert_fp = ?1", fp, ret,
                                NULL, NULL);
}

int store_target_list(mef_store_t *s, store_target_t **ret, size_t *ret_n) {
        if (!s || !ret || !ret_n)
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "SELECT " TARGET_COLUMNS " FROM targets ORDER BY id", &st));
        void *list = NULL;
        int r = store_select_all(st, &store_target_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

int store_target_remove(mef_store_t *s, const char *id) {
        if (!s || !id)
                return -EINVAL;
        return store_update_one(s, "DELETE FROM targets WHERE id = ?1", id, NULL);
}

/* ---- enrolments ---- */

