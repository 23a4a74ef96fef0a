# scan: 0.4.24 -> 1.5.9
"""Client and server settings for token auth, 0.4 style."""
import chromadb
from chromadb.auth.token import TokenAuthClientProvider  # expect: auth-settings-renamed
from chromadb.config import Settings

server_settings = Settings(
    chroma_server_auth_provider="chromadb.auth.token.TokenAuthServerProvider",  # expect: auth-settings-renamed
    chroma_server_auth_credentials="secret",  # expect: auth-settings-renamed
    chroma_server_auth_token_transport_header="X_CHROMA_TOKEN",  # expect: auth-settings-renamed
)
client = chromadb.HttpClient(
    settings=Settings(
        chroma_client_auth_provider="chromadb.auth.token.TokenAuthClientProvider",  # expect-not: auth-settings-renamed
        chroma_client_auth_credentials="secret",  # expect-not: auth-settings-renamed
    )
)
new_style = Settings(chroma_server_authn_provider="chromadb.auth.token_authn.TokenAuthenticationServerProvider")  # expect-not: auth-settings-renamed
