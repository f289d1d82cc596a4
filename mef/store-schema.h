/* SPDX-License-Identifier: MIT */
#pragma once
/* The store's tables, once for both engines (mef/store-sqlite.c, mef/store-pg.c), in the
 * engine's words: ID a text key (PostgreSQL: COLLATE "C", so identifiers compare bytewise as in
 * SQLite whatever the database's locale), INT an integer column, BLOB a byte column. A
 * migration, once released, never changes: a store it created must stay what the next ones
 * expect. */

/* The enrolments' columns (no rowid), as schema 1 made them and schema 5 rebuilt them on SQLite
 * (STORE_SCHEMA_5_SQLITE): one text, so the rebuilt table cannot drift from the one it replaces.
 * STATE_CHECK: the state column's check, the one thing schema 5 changed. */
#define STORE_ENROLMENTS_COLUMNS(ID, INT, BLOB, STATE_CHECK)                                                  \
        " ke_id " ID " PRIMARY KEY NOT NULL,"                                                                 \
        " node_id " ID " NOT NULL REFERENCES nodes(node_id) ON DELETE CASCADE,"                               \
        " key_enc " BLOB " NOT NULL,"                                                                         \
        " ltk_transported " INT " NOT NULL DEFAULT 0,"                                                        \
        " state TEXT NOT NULL " STATE_CHECK ","                                                               \
        " created " INT " NOT NULL,"                                                                          \
        " exp " INT " NOT NULL"

/* The enrolments' indexes, each created by the schema named, all again by schema 5 on SQLite
 * (a dropped table takes its indexes along); enrolments_one_active is STORE_SCHEMA_2. */
#define STORE_ENROLMENTS_INDEX_NODE "CREATE INDEX enrolments_node ON enrolments(node_id, state);" /* 1 */
#define STORE_ENROLMENTS_INDEX_EXP "CREATE INDEX enrolments_exp ON enrolments(exp) WHERE state <> 'active';" /* 3 */
#define STORE_ENROLMENTS_INDEX_CREATED(ORDER) "CREATE INDEX enrolments_created ON enrolments(" ORDER ");" /* 4 */

/* Schema 1's check of the enrolments' state (schema 5 replaced it) */
#define STORE_SCHEMA_1_STATE_CHECK "CHECK (state IN ('active', 'retired', 'revoked', 'deregistered'))"

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
        ENROLMENT_ROWID STORE_ENROLMENTS_COLUMNS(ID, INT, BLOB, STORE_SCHEMA_1_STATE_CHECK) ");"               \
        STORE_ENROLMENTS_INDEX_NODE                                                                           \
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
        STORE_ENROLMENTS_INDEX_EXP

/* 4: bulk import and paging: the CSE-ID check of every node add, enrolments newest first
 * (ENROLMENTS_ORDER: what orders them) */
#define STORE_SCHEMA_4(ENROLMENTS_ORDER)                                                                      \
        "CREATE INDEX nodes_cse_id ON nodes(cse_id);"                                                         \
        STORE_ENROLMENTS_INDEX_CREATED(ENROLMENTS_ORDER)

/* 5: the enrolments' state check as comparisons: SQLite evaluates CHECK (state IN (...)) by
 * building an ephemeral table of the list at every INSERT and UPDATE of a row (about 30,000
 * instructions, a third of the store's work per enrolment), the comparisons in place (about
 * 350). The same meaning, the same constraint name on PostgreSQL. */
#define STORE_SCHEMA_5_STATE_CHECK                                                                            \
        "CHECK (state = 'active' OR state = 'retired' OR state = 'revoked' OR state = 'deregistered')"

/* SQLite cannot change a table's CHECK: the table rebuilt (sqlite.org/lang_altertable.html,
 * section 7) within the migration's transaction. PRAGMA foreign_keys cannot be turned off there,
 * and need not be: no table refers to enrolments (its own REFERENCES nodes is the schema's only
 * one), so its DROP cascades nowhere and fails no check (a REFERENCES enrolments in a later
 * schema would have to change this). Each row keeps its rowid:
 * the paging cursor and the retiring UPDATE go by it. The indexes of schemas 1-4 again; there
 * are no triggers or views. RENAME leaves the name quoted in sqlite_schema ("enrolments"), in
 * a new store as in a migrated one. */
#define STORE_SCHEMA_5_SQLITE                                                                                 \
        "CREATE TABLE enrolments_new ("                                                                       \
        STORE_ENROLMENTS_COLUMNS("TEXT", "INTEGER", "BLOB", STORE_SCHEMA_5_STATE_CHECK) ");"                  \
        "INSERT INTO enrolments_new (rowid, ke_id, node_id, key_enc, ltk_transported, state, created, exp)"   \
        " SELECT rowid, ke_id, node_id, key_enc, ltk_transported, state, created, exp FROM enrolments;"       \
        "DROP TABLE enrolments;"                                                                              \
        "ALTER TABLE enrolments_new RENAME TO enrolments;"                                                    \
        STORE_ENROLMENTS_INDEX_NODE STORE_SCHEMA_2 STORE_ENROLMENTS_INDEX_EXP STORE_ENROLMENTS_INDEX_CREATED("created")

/* PostgreSQL changes the check in place, under the name it gave the column's check in schema 1
 * (table_column_check): a new store's and a migrated one's are the same. */
#define STORE_SCHEMA_5_PG                                                                                     \
        "ALTER TABLE enrolments DROP CONSTRAINT enrolments_state_check,"                                      \
        " ADD CONSTRAINT enrolments_state_check " STORE_SCHEMA_5_STATE_CHECK ";"
