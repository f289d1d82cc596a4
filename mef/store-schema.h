/* SPDX-License-Identifier: MIT */
#pragma once
/* The store's tables, once for both engines (mef/store-sqlite.c, mef/store-pg.c), in the
 * engine's words: ID a text key (PostgreSQL: COLLATE "C", so identifiers compare bytewise as in
 * SQLite whatever the database's locale), INT an integer column, BLOB a byte column. A
 * migration, once released, never changes: a store it created must stay what the next ones
 * expect. */

/* 1: the first schema. ENROLMENT_ROWID: PostgreSQL's column for insertion order, named like
 * SQLite's implicit rowid so that one query orders both; AUDIT_ID: the audit row's key. */
#define STORE_SCHEMA_1(ID, INT, BLOB, ENROLMENT_ROWID, AUDIT_ID)                                               \
        "CREATE TABLE nodes ("                                                                                \
        " node_id " ID " PRIMARY KEY NOT NULL,"                                                               \
        " kpm_id " ID " UNIQUE,"                                                                              \
        " kpm_enc " BLOB ","                                                                                  \
        " cert_fp " ID " UNIQUE,"                                                                             \
        " cse_id " ID " NOT NULL,"                                                                            \
        " cse_base TEXT NOT NULL,"                                                                            \
        " targets TEXT NOT NULL DEFAULT '[]'," /* JSON array of target IDs */                                 \
        " poll " INT " NOT NULL,"                                                                             \
        " lifetime " INT " NOT NULL,"                                                                         \
        " ltk_transported " INT " NOT NULL DEFAULT 0,"                                                        \
        " state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'reenrol', 'revoked')),"           \
        " created " INT " NOT NULL,"                                                                          \
        " CHECK ((kpm_id IS NULL) = (kpm_enc IS NULL)),"                                                      \
        " CHECK ((kpm_id IS NULL) <> (cert_fp IS NULL)));"                                                    \
        "CREATE TABLE targets ("                                                                              \
        " id " ID " PRIMARY KEY NOT NULL,"                                                                    \
        " psk_id " ID " UNIQUE,"                                                                              \
        " psk_enc " BLOB ","                                                                                  \
        " cert_fp " ID " UNIQUE,"                                                                             \
        " created " INT " NOT NULL,"                                                                          \
        " CHECK ((psk_id IS NULL) = (psk_enc IS NULL)),"                                                      \
        " CHECK ((psk_id IS NULL) <> (cert_fp IS NULL)));"                                                    \
        "CREATE TABLE enrolments ("                                                                           \
        ENROLMENT_ROWID                                                                                       \
        " ke_id " ID " PRIMARY KEY NOT NULL,"                                                                 \
        " node_id " ID " NOT NULL REFERENCES nodes(node_id) ON DELETE CASCADE,"                               \
        " key_enc " BLOB " NOT NULL,"                                                                         \
        " ltk_transported " INT " NOT NULL DEFAULT 0,"                                                        \
        " state TEXT NOT NULL CHECK (state IN ('active', 'retired', 'revoked', 'deregistered')),"            \
        " created " INT " NOT NULL,"                                                                          \
        " exp " INT " NOT NULL);"                                                                             \
        "CREATE INDEX enrolments_node ON enrolments(node_id, state);"                                         \
        "CREATE TABLE audit ("                                                                                \
        " id " AUDIT_ID ","                                                                                   \
        " ts " INT " NOT NULL,"                                                                               \
        " actor TEXT NOT NULL,"                                                                               \
        " action TEXT NOT NULL,"                                                                              \
        " subject TEXT,"                                                                                      \
        " detail TEXT);"                                                                                      \
        "CREATE TABLE meta (name " ID " PRIMARY KEY NOT NULL, value " BLOB " NOT NULL);"

/* 2: at most one active enrolment per node, whoever writes */
#define STORE_SCHEMA_2 "CREATE UNIQUE INDEX enrolments_one_active ON enrolments(node_id) WHERE state = 'active';"

/* 3: status checks tallied per node instead of an audit row each; pruning by age */
#define STORE_SCHEMA_3(INT)                                                                                   \
        "ALTER TABLE nodes ADD COLUMN last_seen " INT " NOT NULL DEFAULT 0;"                                  \
        "ALTER TABLE nodes ADD COLUMN status_checks " INT " NOT NULL DEFAULT 0;"                              \
        "CREATE INDEX audit_ts ON audit(ts);"                                                                 \
        "CREATE INDEX enrolments_exp ON enrolments(exp) WHERE state <> 'active';"

/* 4: bulk import and paging: the CSE-ID check of every node add, enrolments newest first
 * (ENROLMENTS_ORDER: what orders them) */
#define STORE_SCHEMA_4(ENROLMENTS_ORDER)                                                                      \
        "CREATE INDEX nodes_cse_id ON nodes(cse_id);"                                                         \
        "CREATE INDEX enrolments_created ON enrolments(" ENROLMENTS_ORDER ");"
