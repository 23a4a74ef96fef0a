# scan: 0.3.29 -> 1.5.9
"""Code written for both sides of a change, and a finding the team has accepted."""


def save(client):
    if hasattr(client, "persist"):  # 0.3 wrote to disk only on persist()
        client.persist()  # expect-not: persist-removed


def flush(chroma_client):
    chroma_client.persist()  # chroma-compat: ignore[persist-removed]  # expect-not: persist-removed
