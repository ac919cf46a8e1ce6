/*  annal_command.h: the commands of the protocol (docs/protocol.md,
    sections 4, 6 and 7), one row each in one table: the name a request gives
    in "type", whether it names an aggregate or a consumer group, whether
    it may write.

    The codec reads the table to decode a request (the name, the aggregate
    id and group name rules); the broker extends it with a handler per command
    (broker/annal_broker.c) and reads "writes" from it when a batch's
    writes fail. Invariant: row i of the table is the command i, and every
    command has a row. */
#ifndef ANNAL_COMMAND_H
#define ANNAL_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    ANNAL_CMD_APPEND,
    ANNAL_CMD_CREATE_SNAPSHOT,
    ANNAL_CMD_GET_SNAPSHOT,
    ANNAL_CMD_REPLAY,
    ANNAL_CMD_GET_STATE,
    ANNAL_CMD_READ,
    ANNAL_CMD_READ_ALL,
    ANNAL_CMD_STATUS,
    ANNAL_CMD_INIT,
    ANNAL_CMD_GROUP_CREATE, /* consumer groups: docs/protocol.md, section 6 */
    ANNAL_CMD_GROUP_FETCH,
    ANNAL_CMD_GROUP_ACK,
    ANNAL_CMD_GROUP_NACK,
    ANNAL_CMD_GROUP_INFO,
    ANNAL_CMD_GROUP_LIST,
    ANNAL_CMD_GROUP_DELETE,
    ANNAL_CMD_GROUP_PARKED,
    ANNAL_CMD_GROUP_REPLAY_PARKED,
    ANNAL_CMD_DELETE_AGGREGATE, /* deletion and retention: docs/protocol.md, section 7 */
    ANNAL_CMD_SET_RETENTION,
    ANNAL_CMD_GET_RETENTION,
    ANNAL_CMD_COUNT
} annal_cmd_t;

/* What the wire knows of one command. */
typedef struct {
    annal_cmd_t cmd;      /* the command, its row in the table */
    const char *name;     /* as in "type" */
    bool needs_aggregate; /* the request must carry a valid aggregate_id */
    bool needs_group;     /* the request must carry a valid group name */
    bool writes;          /* it may write to the store */
} annal_command_t;

/* The row of cmd (borrowed, static), or NULL when cmd is not a command. */
const annal_command_t *annal_command_get(annal_cmd_t cmd);

/* The command named by the len bytes at name (not NUL-terminated, compared
   byte for byte), or NULL when there is none. */
const annal_command_t *annal_command_find(const char *name, size_t len);

/* The name of cmd as it appears in "type"; borrowed, static; "?" when cmd
   is not a command. */
const char *annal_cmd_name(annal_cmd_t cmd);

#endif
