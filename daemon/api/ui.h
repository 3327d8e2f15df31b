/* The web page's files, embedded into evogradd at build time
 * (daemon/ui/embed.sh), so an installed daemon serves its page with no
 * other files and no internet. */
#ifndef EG_API_UI_H
#define EG_API_UI_H

#include <stddef.h>

typedef struct eg_ui_asset {
    const char *path;          /* as served: "/", "/ui/app.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
} eg_ui_asset;

/* Ends with an entry whose path is NULL. */
extern const eg_ui_asset eg_ui_assets[];

#endif
