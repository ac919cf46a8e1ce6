/*  annal_command.c: the commands' names. */
#include "annal_command.h"

static const char *s_cmd_names[ANNAL_CMD_COUNT] = {
    [ANNAL_CMD_APPEND] = "append",
    [ANNAL_CMD_CREATE_SNAPSHOT] = "create_snapshot",
    [ANNAL_CMD_GET_SNAPSHOT] = "get_snapshot",
    [ANNAL_CMD_REPLAY] = "replay",
    [ANNAL_CMD_GET_STATE] = "get_state",
    [ANNAL_CMD_READ] = "read",
    [ANNAL_CMD_READ_ALL] = "read_all",
    [ANNAL_CMD_STATUS] = "status",
    [ANNAL_CMD_INIT] = "init",
};

const char *annal_cmd_name(annal_cmd_t cmd)
{
    return (unsigned) cmd < ANNAL_CMD_COUNT ? s_cmd_names[cmd] : "?";
}
