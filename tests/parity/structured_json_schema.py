"""with_structured_output(PydanticModel): the default method (a strict json_schema response_format)."""

from pydantic import BaseModel, Field

from langchain_openai import ChatOpenAI


class Movie(BaseModel):
    """A movie with its details."""

    title: str = Field(description="The movie title")
    year: int = Field(description="Release year")
    genres: list[str] = Field(description="Genres, most important first")
    rating: float = Field(description="Rating out of 10")


llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)
structured = llm.with_structured_output(Movie)
movie = structured.invoke("Give me the details of the movie Inception.")
print(type(movie).__name__, movie.model_dump())

raw = llm.with_structured_output(Movie, include_raw=True).invoke("Give me the details of the movie Arrival.")
print("parsed:", raw["parsed"].model_dump())
print("parsing_error:", raw["parsing_error"])
print("raw content:", raw["raw"].content)
