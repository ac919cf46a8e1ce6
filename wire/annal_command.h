/*  annal_command.h: the commands of the protocol (docs/protocol.md,
    section 4), one enum value each. */
#ifndef ANNAL_COMMAND_H
#define ANNAL_COMMAND_H

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
    ANNAL_CMD_COUNT
} annal_cmd_t;

/* The name of cmd as it appears in "type"; borrowed, static. */
const char *annal_cmd_name(annal_cmd_t cmd);

#endif
