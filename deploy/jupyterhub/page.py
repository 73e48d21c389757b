# The culler's page (docs/page.md): in jupyterhub_config.py, after c.JupyterHub.services.
for service in c.JupyterHub.services:
    if "cull_idle" in service.get("command", []):
        # With a url, the Hub routes /services/<name>/ to the culler and makes it an OAuth client.
        service.setdefault("url", "http://127.0.0.1:10101")
        service["oauth_no_confirm"] = True
        access = f"access:services!service={service['name']}"
        # Every user may open the page, and their servers' own tokens may call its API.
        c.JupyterHub.load_roles.append({"name": "user", "scopes": ["self", access]})
        c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", access]
        # The notice in JupyterLab (cull-idle-sensor): where servers reach the culler's API.
        c.Spawner.environment.update({"CULL_IDLE_URL": f"{service['url']}/services/{service['name']}/"})
