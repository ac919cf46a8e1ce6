/*  annal_command.c: the command table (see annal_command.h). */
#include "annal_command.h"

#include <string.h>

/* A row, placed at its command's index: the table cannot list a command
   under another's row. */
#define ROW(cmd, name, needs_aggregate, writes) [cmd] = {cmd, name, needs_aggregate, writes}

static const annal_command_t s_commands[] = {
    /*  command                    "type"             aggregate writes */
    ROW(ANNAL_CMD_APPEND, "append", true, true),
    ROW(ANNAL_CMD_CREATE_SNAPSHOT, "create_snapshot", true, true),
    ROW(ANNAL_CMD_GET_SNAPSHOT, "get_snapshot", true, false),
    ROW(ANNAL_CMD_REPLAY, "replay", true, false),
    ROW(ANNAL_CMD_GET_STATE, "get_state", true, false),
    ROW(ANNAL_CMD_READ, "read", true, false),
    ROW(ANNAL_CMD_READ_ALL, "read_all", false, false),
    ROW(ANNAL_CMD_STATUS, "status", false, false),
    ROW(ANNAL_CMD_INIT, "init", false, false),
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
