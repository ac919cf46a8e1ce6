/*  annal_command.c: the command table (see annal_command.h). */
#include "annal_command.h"

#include <string.h>

/* A row, placed at its command's index: the table cannot list a command
   under another's row. */
#define ROW(cmd, name, needs_aggregate, needs_group, writes) \
    [cmd] = {cmd, name, needs_aggregate, needs_group, writes}

static const annal_command_t s_commands[] = {
    /*  command                    "type"             aggregate group writes */
    ROW(ANNAL_CMD_APPEND, "append", true, false, true),
    ROW(ANNAL_CMD_CREATE_SNAPSHOT, "create_snapshot", true, false, true),
    ROW(ANNAL_CMD_GET_SNAPSHOT, "get_snapshot", true, false, false),
    ROW(ANNAL_CMD_REPLAY, "replay", true, false, false),
    ROW(ANNAL_CMD_GET_STATE, "get_state", true, false, false),
    ROW(ANNAL_CMD_READ, "read", true, false, false),
    ROW(ANNAL_CMD_READ_ALL, "read_all", false, false, false),
    ROW(ANNAL_CMD_STATUS, "status", false, false, false),
    ROW(ANNAL_CMD_INIT, "init", false, false, false),
    /* a fetch writes: its leases are shared state on a shared store */
    ROW(ANNAL_CMD_GROUP_CREATE, "group_create", false, true, true),
    ROW(ANNAL_CMD_GROUP_FETCH, "group_fetch", false, true, true),
    ROW(ANNAL_CMD_GROUP_ACK, "group_ack", false, true, true),
    ROW(ANNAL_CMD_GROUP_NACK, "group_nack", false, true, true),
    ROW(ANNAL_CMD_GROUP_INFO, "group_info", false, true, false),
    ROW(ANNAL_CMD_GROUP_LIST, "group_list", false, false, false),
    ROW(ANNAL_CMD_GROUP_DELETE, "group_delete", false, true, true),
    ROW(ANNAL_CMD_GROUP_PARKED, "group_parked", false, true, false),
    ROW(ANNAL_CMD_GROUP_REPLAY_PARKED, "group_replay_parked", false, true, true),
    ROW(ANNAL_CMD_DELETE_AGGREGATE, "delete_aggregate", true, false, true),
    ROW(ANNAL_CMD_SET_RETENTION, "set_retention", true, false, true),
    ROW(ANNAL_CMD_GET_RETENTION, "get_retention", true, false, false),
};
_Static_assert(sizeof s_commands / sizeof s_commands[0] == ANNAL_CMD_COUNT, "one row per command");

const annal_command_t *annal_command_get(annal_cmd_t cmd)
{
    return (unsigned) cmd < ANNAL_CMD_COUNT ? &s_commands[cmd] : NULL;
}

const annal_command_t *annal_command_find(const char *name, size_t len)
{
    for (size_t i = 0; i < ANNAL_CMD_COUNT; i++)
        if (strlen(s_commands[i].name) == len && memcmp(s_commands[i].name, name, len) == 0)
            return &s_commands[i];
    return NULL;
}

const char *annal_cmd_name(annal_cmd_t cmd)
{
    const annal_command_t *command = annal_command_get(cmd);
    return command ? command->name : "?";
}
