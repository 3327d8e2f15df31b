/* The task registry: one entry per task (meta/task_def.h). */
#include "meta/task_def.h"

#include <stdio.h>
#include <string.h>

extern const eg_task_def eg_toy1d_def, eg_rotation_def, eg_mwn_def, eg_lft_def, eg_ner_def,
    eg_metaxl_def;

const eg_task_def *const eg_task_registry[] = {
    &eg_toy1d_def,
    &eg_rotation_def,
    &eg_mwn_def,
    &eg_lft_def,
    &eg_ner_def,
    &eg_metaxl_def,
    NULL,
};

const eg_task_def *eg_task_find(const char *name)
{
    for (int i = 0; eg_task_registry[i]; i++)
        if (strcmp(eg_task_registry[i]->name, name) == 0) return eg_task_registry[i];
    return NULL;
}

const char *eg_task_names(unsigned flag, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; eg_task_registry[i] && used < cap; i++)
        if (!flag || (eg_task_registry[i]->flags & flag))
            used += (size_t)snprintf(buf + used, cap - used, "%s\"%s\"", used ? ", " : "",
                                     eg_task_registry[i]->name);
    return buf;
}
