"""with_structured_output(..., method="function_calling"): a forced tool call carries the answer."""

from typing import Optional

from pydantic import BaseModel, Field

from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI


class Person(BaseModel):
    """Information about a person mentioned in a text."""

    name: str = Field(description="The person's full name")
    age: Optional[int] = Field(default=None, description="Age in years, if stated")
    occupation: Optional[str] = Field(default=None, description="Occupation, if stated")


prompt = ChatPromptTemplate.from_messages(
    [("system", "Extract the person described in the text."), ("human", "{text}")]
)
extractor = prompt | ChatOpenAI(model="gpt-4o-mini", temperature=0).with_structured_output(
    Person, method="function_calling"
)

texts = [
    "Ada Lovelace, 36, was a mathematician who wrote the first published algorithm.",
    "My neighbour Tom fixes bicycles for a living.",
]
for text in texts:
    person = extractor.invoke({"text": text})
    print(person.model_dump())
