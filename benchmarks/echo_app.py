"""The serve benchmark's reference: a bare FastAPI app on the same uvicorn settings, whose
POST endpoint parses the same JSON body and returns a small JSON object. The hadis
server's requests/s relative to this one is comparable across machines."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    prompt: str
    size: str = "1024x1024"


@app.post("/v1/images/generations")
def echo(body: Body) -> dict[str, object]:
    return {"created": 0, "data": [{"prompt": body.prompt, "size": body.size}]}


@app.get("/readyz")
def ready() -> dict[str, str]:
    return {"status": "ready"}
